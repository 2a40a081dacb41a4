import Foundation

/// cuDNN's convolution (the classic descriptor API of cuDNN 8 and 9), opened with `dlopen` like
/// the other NVIDIA libraries, so the binary still runs where cuDNN is absent (the backend then
/// falls back to im2col + cuBLASLt). `ZIMAGE_CUDNN_LIBRARY` names a library to try first.
final class CUDNN {
    typealias Status = Int32
    private let cudnnCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let cudnnSetStream: @convention(c) (OpaquePointer?, OpaquePointer?) -> Status
    private let cudnnGetErrorString: @convention(c) (Status) -> UnsafePointer<CChar>?
    private let createTensor: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let setTensor4d: @convention(c) (OpaquePointer?, Int32, Int32, Int32, Int32, Int32, Int32) -> Status
    private let destroyTensor: @convention(c) (OpaquePointer?) -> Status
    private let createFilter: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let setFilter4d: @convention(c) (OpaquePointer?, Int32, Int32, Int32, Int32, Int32, Int32) -> Status
    private let destroyFilter: @convention(c) (OpaquePointer?) -> Status
    private let createConvolution: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let setConvolution2d: @convention(c) (OpaquePointer?, Int32, Int32, Int32, Int32, Int32, Int32, Int32,
                                                  Int32) -> Status
    private let setMathType: @convention(c) (OpaquePointer?, Int32) -> Status
    private let destroyConvolution: @convention(c) (OpaquePointer?) -> Status
    private let getAlgorithm: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                              OpaquePointer?, Int32, UnsafeMutablePointer<Int32>,
                                              UnsafeMutableRawPointer) -> Status
    private let findAlgorithm: @convention(c) (OpaquePointer?, OpaquePointer?, UnsafeRawPointer?, OpaquePointer?,
                                               UnsafeRawPointer?, OpaquePointer?, OpaquePointer?, UnsafeMutableRawPointer?,
                                               Int32, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer,
                                               UnsafeMutableRawPointer?, Int) -> Status
    private let convolutionForward: @convention(c) (OpaquePointer?, UnsafeRawPointer, OpaquePointer?, UnsafeRawPointer?,
                                                    OpaquePointer?, UnsafeRawPointer?, OpaquePointer?, Int32,
                                                    UnsafeMutableRawPointer?, Int, UnsafeRawPointer, OpaquePointer?,
                                                    UnsafeMutableRawPointer?) -> Status
    private let library: DynamicLibrary
    private var handle: OpaquePointer?
    /// Per convolution shape: its descriptors, the chosen algorithm and that algorithm's workspace.
    private var plans: [Key: Plan] = [:]

    /// cudnnDataType_t of the element types convolutions run in.
    enum DataType: Int32 {
        case float = 0, half = 2, bfloat16 = 9
    }

    /// One convolution's shape: input N×C×H×W, filter K×C×R×S, padding and stride (dilation 1).
    /// Every operand is channels-last (NHWC activations, KRSC filter): cuDNN's fast algorithms
    /// for 16-bit types are NHWC ones.
    struct Key: Hashable {
        var n: Int32, c: Int32, h: Int32, w: Int32, k: Int32, r: Int32, s: Int32
        var padding: Int32, stride: Int32, outH: Int32, outW: Int32
        var type: Int32
    }

    private struct Plan {
        let descriptors: Descriptors
        let algorithm: Int32
        let workspace: Int
    }

    static func candidates() -> [String] {
        var names = ProcessInfo.processInfo.environment["ZIMAGE_CUDNN_LIBRARY"].map { [$0] } ?? []
        names += ["libcudnn.so.9", "libcudnn.so.8", "/usr/local/cuda/lib64/libcudnn.so.9", "libcudnn.so"]
        return names
    }

    init(stream: OpaquePointer?) throws {
        let lib = try DynamicLibrary(candidates: Self.candidates(), library: "libcudnn")
        library = lib
        cudnnCreate = try lib.function("cudnnCreate")
        cudnnSetStream = try lib.function("cudnnSetStream")
        cudnnGetErrorString = try lib.function("cudnnGetErrorString")
        createTensor = try lib.function("cudnnCreateTensorDescriptor")
        setTensor4d = try lib.function("cudnnSetTensor4dDescriptor")
        destroyTensor = try lib.function("cudnnDestroyTensorDescriptor")
        createFilter = try lib.function("cudnnCreateFilterDescriptor")
        setFilter4d = try lib.function("cudnnSetFilter4dDescriptor")
        destroyFilter = try lib.function("cudnnDestroyFilterDescriptor")
        createConvolution = try lib.function("cudnnCreateConvolutionDescriptor")
        setConvolution2d = try lib.function("cudnnSetConvolution2dDescriptor")
        setMathType = try lib.function("cudnnSetConvolutionMathType")
        destroyConvolution = try lib.function("cudnnDestroyConvolutionDescriptor")
        getAlgorithm = try lib.function("cudnnGetConvolutionForwardAlgorithm_v7")
        findAlgorithm = try lib.function("cudnnFindConvolutionForwardAlgorithmEx")
        convolutionForward = try lib.function("cudnnConvolutionForward")
        try check(cudnnCreate(&handle), "cudnnCreate")
        try check(cudnnSetStream(handle, stream), "cudnnSetStream")
    }

    private func check(_ status: Status, _ call: String) throws {
        guard status == 0 else {
            let message = cudnnGetErrorString(status).map { String(cString: $0) } ?? "status \(status)"
            throw CUDAError.cudnn(call: call, status: status, message: message)
        }
    }

    /// The descriptors of one convolution, destroyed with the value.
    private final class Descriptors {
        var input: OpaquePointer?, output: OpaquePointer?
        var filter: OpaquePointer?, convolution: OpaquePointer?
        let owner: CUDNN
        init(owner: CUDNN) { self.owner = owner }
        deinit {
            for tensor in [input, output] where tensor != nil { _ = owner.destroyTensor(tensor) }
            if filter != nil { _ = owner.destroyFilter(filter) }
            if convolution != nil { _ = owner.destroyConvolution(convolution) }
        }
    }

    private func descriptors(_ key: Key) throws -> Descriptors {
        let d = Descriptors(owner: self)
        try check(createTensor(&d.input), "cudnnCreateTensorDescriptor")
        let nhwc: Int32 = 1   // CUDNN_TENSOR_NHWC (for a filter: K×R×S×C)
        try check(setTensor4d(d.input, nhwc, key.type, key.n, key.c, key.h, key.w), "cudnnSetTensor4dDescriptor(x)")
        try check(createTensor(&d.output), "cudnnCreateTensorDescriptor")
        try check(setTensor4d(d.output, nhwc, key.type, key.n, key.k, key.outH, key.outW),
                  "cudnnSetTensor4dDescriptor(y)")
        try check(createFilter(&d.filter), "cudnnCreateFilterDescriptor")
        try check(setFilter4d(d.filter, key.type, nhwc, key.k, key.c, key.r, key.s), "cudnnSetFilter4dDescriptor")
        try check(createConvolution(&d.convolution), "cudnnCreateConvolutionDescriptor")
        // Cross-correlation (what PyTorch calls convolution), float32 accumulation.
        try check(setConvolution2d(d.convolution, key.padding, key.padding, key.stride, key.stride, 1, 1, 1, 0),
                  "cudnnSetConvolution2dDescriptor")
        // Tensor cores for half types; plain FMA for float32 (no TF32).
        try check(setMathType(d.convolution, key.type == DataType.float.rawValue ? 3 : 1), "cudnnSetConvolutionMathType")
        return d
    }

    /// Whether `key` has a chosen algorithm already.
    func hasPlan(_ key: Key) -> Bool { plans[key] != nil }

    /// Chooses the algorithm for `key`: cuDNN's heuristic ranking (no GPU work, so the first
    /// image does not wait for every algorithm to be timed), or with `timed` by running every
    /// candidate on the real operands (cudnnFindConvolutionForwardAlgorithmEx; it synchronises).
    /// Keeps the best whose workspace fits in `workspaceBytes`.
    func choose(_ key: Key, timed: Bool, x: UInt64, w: UInt64, y: UInt64, workspace: UInt64,
                workspaceBytes: Int) throws {
        guard plans[key] == nil else { return }
        let d = try descriptors(key)
        let capacity: Int32 = 8, stride = 48   // sizeof(cudnnConvolutionFwdAlgoPerf_t)
        let results = UnsafeMutableRawPointer.allocate(byteCount: Int(capacity) * stride, alignment: 8)
        defer { results.deallocate() }
        var returned: Int32 = 0
        if timed {
            try check(findAlgorithm(handle, d.input, UnsafeRawPointer(bitPattern: UInt(x)), d.filter,
                                    UnsafeRawPointer(bitPattern: UInt(w)), d.convolution, d.output,
                                    UnsafeMutableRawPointer(bitPattern: UInt(y)), capacity, &returned, results,
                                    UnsafeMutableRawPointer(bitPattern: UInt(workspace)), workspaceBytes),
                      "cudnnFindConvolutionForwardAlgorithmEx")
        } else {
            try check(getAlgorithm(handle, d.input, d.filter, d.convolution, d.output, capacity, &returned, results),
                      "cudnnGetConvolutionForwardAlgorithm_v7")
        }
        for index in 0..<Int(returned) {
            let algorithm = results.load(fromByteOffset: index * stride, as: Int32.self)
            let status = results.load(fromByteOffset: index * stride + 4, as: Int32.self)
            let memory = results.load(fromByteOffset: index * stride + 16, as: Int.self)
            guard status == 0, memory <= workspaceBytes else { continue }
            plans[key] = Plan(descriptors: d, algorithm: algorithm, workspace: memory)
            return
        }
        throw CUDAError.cudnn(call: timed ? "cudnnFindConvolutionForwardAlgorithmEx" : "cudnnGetConvolutionForwardAlgorithm_v7",
                              status: 9, message: "no algorithm within \(workspaceBytes) bytes of workspace")
    }

    /// The workspace bytes of the chosen algorithm.
    func workspaceBytes(_ key: Key) -> Int? { plans[key]?.workspace }

    /// y = conv(x, w), NHWC, with the algorithm `choose` picked (a workspace of `workspaceBytes(key)`).
    func forward(_ key: Key, x: UInt64, w: UInt64, y: UInt64, workspace: UInt64) throws {
        guard let plan = plans[key] else {
            throw CUDAError.cudnn(call: "cudnnConvolutionForward", status: 3, message: "no algorithm chosen")
        }
        let d = plan.descriptors
        var one: Float = 1, zero: Float = 0
        try check(convolutionForward(handle, &one, d.input, UnsafeRawPointer(bitPattern: UInt(x)), d.filter,
                                     UnsafeRawPointer(bitPattern: UInt(w)), d.convolution, plan.algorithm,
                                     UnsafeMutableRawPointer(bitPattern: UInt(workspace)), plan.workspace, &zero,
                                     d.output, UnsafeMutableRawPointer(bitPattern: UInt(y))),
                  "cudnnConvolutionForward")
    }
}
