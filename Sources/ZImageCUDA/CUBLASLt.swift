import ZImageTensor

/// cuBLASLt, opened with `dlopen`: matrix products with fused bias epilogues.
/// Enum values and struct layouts: docs/notes/cuda-abi.md (read from cublasLt.h, 12.9 and 13.x).
final class CUBLASLt {
    typealias Status = Int32
    private let create: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let destroy: @convention(c) (OpaquePointer?) -> Status
    private let descCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, Int32) -> Status
    private let descDestroy: @convention(c) (OpaquePointer?) -> Status
    private let descSet: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    private let layoutCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32, UInt64, UInt64, Int64) -> Status
    private let layoutDestroy: @convention(c) (OpaquePointer?) -> Status
    private let layoutSet: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    private let preferenceCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let preferenceDestroy: @convention(c) (OpaquePointer?) -> Status
    private let preferenceSet: @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer, Int) -> Status
    private let heuristic: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?,
                                           OpaquePointer?, OpaquePointer?, Int32, UnsafeMutableRawPointer,
                                           UnsafeMutablePointer<Int32>) -> Status
    private let matmulCall: @convention(c) (OpaquePointer?, OpaquePointer?, UnsafeRawPointer, UnsafeRawPointer?,
                                            OpaquePointer?, UnsafeRawPointer?, OpaquePointer?, UnsafeRawPointer,
                                            UnsafeRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?, OpaquePointer?,
                                            UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, OpaquePointer?) -> Status
    let version: Int
    private let library: DynamicLibrary
    private var handle: OpaquePointer?

    // cublasLt.h values.
    private enum Value {
        static let compute32F: Int32 = 68
        static let r32F: Int32 = 0, r16F: Int32 = 2, r16BF: Int32 = 14
        static let transA: Int32 = 3, transB: Int32 = 4, epilogue: Int32 = 7, biasPointer: Int32 = 8
        static let epilogueBias: UInt32 = 4
        static let batchCount: Int32 = 5, stridedBatchOffset: Int32 = 6
        static let maxWorkspaceBytes: Int32 = 1
        static let heuristicResultSize = 96
        static let workspaceSizeOffset = 64, stateOffset = 72
    }

    static let candidates = ["libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.13", "libcublasLt.so.12",
                             "/usr/local/cuda/lib64/libcublasLt.so.12", "libcublasLt.so"]

    init() throws {
        let lib = try DynamicLibrary(candidates: Self.candidates, library: "libcublasLt")
        library = lib
        create = try lib.function("cublasLtCreate")
        destroy = try lib.function("cublasLtDestroy")
        descCreate = try lib.function("cublasLtMatmulDescCreate")
        descDestroy = try lib.function("cublasLtMatmulDescDestroy")
        descSet = try lib.function("cublasLtMatmulDescSetAttribute")
        layoutCreate = try lib.function("cublasLtMatrixLayoutCreate")
        layoutDestroy = try lib.function("cublasLtMatrixLayoutDestroy")
        layoutSet = try lib.function("cublasLtMatrixLayoutSetAttribute")
        preferenceCreate = try lib.function("cublasLtMatmulPreferenceCreate")
        preferenceDestroy = try lib.function("cublasLtMatmulPreferenceDestroy")
        preferenceSet = try lib.function("cublasLtMatmulPreferenceSetAttribute")
        heuristic = try lib.function("cublasLtMatmulAlgoGetHeuristic")
        matmulCall = try lib.function("cublasLtMatmul")
        let getVersion: @convention(c) () -> Int = try lib.function("cublasLtGetVersion")
        version = getVersion()
        try check(create(&handle), "cublasLtCreate")
    }

    deinit { _ = destroy(handle) }

    private func check(_ status: Status, _ call: String) throws {
        guard status == 0 else { throw CUDAError.cublas(call: call, status: status) }
    }

    static func dataType(_ dtype: DType) -> Int32? {
        switch dtype {
        case .float32: Value.r32F
        case .bfloat16: Value.r16BF
        case .float16: Value.r16F
        default: nil
        }
    }

    /// One column-major operand: rows × cols with leading dimension, and a batch stride.
    struct Operand {
        var address: UInt64
        var rows: Int, cols: Int, leading: Int
        var batchStride: Int
    }

    /// `D = op(A) · op(B) (+ bias per row of D)` in column-major terms, batched with strides.
    func matmul(dtype: DType, outputDType: DType? = nil, a: Operand, transposeA: Bool, b: Operand, transposeB: Bool,
                d: Operand, batch: Int, bias: UInt64?, alpha scale: Float = 1, workspace: UInt64, workspaceBytes: Int,
                stream: OpaquePointer?) throws {
        guard let type = Self.dataType(dtype) else { throw TensorError.unsupportedDType(op: "matmul", dtype: dtype) }
        guard let outputType = Self.dataType(outputDType ?? dtype) else {
            throw TensorError.unsupportedDType(op: "matmul", dtype: outputDType ?? dtype)
        }
        var desc: OpaquePointer?
        try check(descCreate(&desc, Value.compute32F, Value.r32F), "cublasLtMatmulDescCreate")
        defer { _ = descDestroy(desc) }
        var opA: Int32 = transposeA ? 1 : 0, opB: Int32 = transposeB ? 1 : 0
        try check(descSet(desc, Value.transA, &opA, 4), "cublasLtMatmulDescSetAttribute(TRANSA)")
        try check(descSet(desc, Value.transB, &opB, 4), "cublasLtMatmulDescSetAttribute(TRANSB)")
        if var biasAddress = bias {
            var epilogue = Value.epilogueBias
            try check(descSet(desc, Value.epilogue, &epilogue, 4), "cublasLtMatmulDescSetAttribute(EPILOGUE)")
            try check(descSet(desc, Value.biasPointer, &biasAddress, 8), "cublasLtMatmulDescSetAttribute(BIAS_POINTER)")
        }
        var layouts: [OpaquePointer?] = []
        defer { layouts.forEach { _ = layoutDestroy($0) } }
        for (index, operand) in [a, b, d].enumerated() {
            var layout: OpaquePointer?
            try check(layoutCreate(&layout, index == 2 ? outputType : type, UInt64(operand.rows), UInt64(operand.cols),
                                   Int64(operand.leading)),
                      "cublasLtMatrixLayoutCreate")
            layouts.append(layout)
            if batch > 1 {
                var count = Int32(batch), stride = Int64(operand.batchStride)
                try check(layoutSet(layout, Value.batchCount, &count, 4), "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)")
                try check(layoutSet(layout, Value.stridedBatchOffset, &stride, 8),
                          "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)")
            }
        }
        var preference: OpaquePointer?
        try check(preferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
        defer { _ = preferenceDestroy(preference) }
        var limit = UInt64(workspaceBytes)
        try check(preferenceSet(preference, Value.maxWorkspaceBytes, &limit, 8),
                  "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)")
        let result = UnsafeMutableRawPointer.allocate(byteCount: Value.heuristicResultSize, alignment: 8)
        defer { result.deallocate() }
        var found: Int32 = 0
        try check(heuristic(handle, desc, layouts[0], layouts[1], layouts[2], layouts[2], preference, 1, result, &found),
                  "cublasLtMatmulAlgoGetHeuristic")
        guard found > 0, result.load(fromByteOffset: Value.stateOffset, as: Int32.self) == 0 else {
            throw CUDAError.cublas(call: "cublasLtMatmulAlgoGetHeuristic (no algorithm for \(dtype) "
                                   + "\(d.rows)x\(d.cols)x\(transposeA ? a.rows : a.cols))", status: 15)
        }
        var alpha: Float = scale, beta: Float = 0
        try check(matmulCall(handle, desc, &alpha, UnsafeRawPointer(bitPattern: UInt(a.address)), layouts[0],
                             UnsafeRawPointer(bitPattern: UInt(b.address)), layouts[1], &beta,
                             UnsafeRawPointer(bitPattern: UInt(d.address)), layouts[2],
                             UnsafeMutableRawPointer(bitPattern: UInt(d.address)), layouts[2], result,
                             UnsafeMutableRawPointer(bitPattern: UInt(workspace)), workspaceBytes, stream),
                  "cublasLtMatmul")
    }
}
