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
    private var plans: [PlanKey: Plan] = [:]

    // cublasLt.h values.
    private enum Value {
        static let compute32F: Int32 = 68
        static let r32F: Int32 = 0, r16F: Int32 = 2, r16BF: Int32 = 14, r8F_E4M3: Int32 = 28
        static let aScalePointer: Int32 = 17, bScalePointer: Int32 = 18, aScaleMode: Int32 = 31, bScaleMode: Int32 = 32
        static let scaleOuterVector32F: Int32 = 3
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

    deinit {
        plans.removeAll()
        _ = destroy(handle)
    }

    private func check(_ status: Status, _ call: String) throws {
        guard status == 0 else { throw CUDAError.cublas(call: call, status: status) }
    }

    static func dataType(_ dtype: DType) -> Int32? {
        switch dtype {
        case .float32: Value.r32F
        case .bfloat16: Value.r16BF
        case .float16: Value.r16F
        case .float8E4M3: Value.r8F_E4M3
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
    /// `rowScales` (FP8 operands): float32 vectors scaling each row of op(A) and each column of
    /// op(B) (cuBLASLt's outer-vector scaling): `D[i, j] = a[i] · b[j] · Σ op(A)[i, k] op(B)[k, j]`.
    func matmul(dtype: DType, outputDType: DType? = nil, a: Operand, transposeA: Bool, b: Operand, transposeB: Bool,
                d: Operand, batch: Int, bias: UInt64?, alpha scale: Float = 1,
                rowScales: (a: UInt64, b: UInt64)? = nil, workspace: UInt64, workspaceBytes: Int,
                stream: OpaquePointer?) throws {
        guard let type = Self.dataType(dtype) else { throw TensorError.unsupportedDType(op: "matmul", dtype: dtype) }
        guard let outputType = Self.dataType(outputDType ?? dtype) else {
            throw TensorError.unsupportedDType(op: "matmul", dtype: outputDType ?? dtype)
        }
        let key = PlanKey(type: type, outputType: type == outputType ? nil : outputType, transposeA: transposeA,
                          transposeB: transposeB, a: OperandShape(a), b: OperandShape(b), d: OperandShape(d),
                          batch: batch, bias: bias != nil, rowScaled: rowScales != nil, workspaceBytes: workspaceBytes)
        let plan = try plans[key] ?? makePlan(key, dtype: dtype, rowScales: rowScales)
        if let rowScales {
            var aScales = rowScales.a, bScales = rowScales.b
            try check(descSet(plan.desc, Value.aScalePointer, &aScales, 8), "cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)")
            try check(descSet(plan.desc, Value.bScalePointer, &bScales, 8), "cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)")
        }
        if var biasAddress = bias {
            try check(descSet(plan.desc, Value.biasPointer, &biasAddress, 8), "cublasLtMatmulDescSetAttribute(BIAS_POINTER)")
        }
        var alpha: Float = scale, beta: Float = 0
        try check(matmulCall(handle, plan.desc, &alpha, UnsafeRawPointer(bitPattern: UInt(a.address)), plan.layouts[0],
                             UnsafeRawPointer(bitPattern: UInt(b.address)), plan.layouts[1], &beta,
                             UnsafeRawPointer(bitPattern: UInt(d.address)), plan.layouts[2],
                             UnsafeMutableRawPointer(bitPattern: UInt(d.address)), plan.layouts[2], plan.algorithm,
                             UnsafeMutableRawPointer(bitPattern: UInt(workspace)), workspaceBytes, stream),
                  "cublasLtMatmul")
    }

    // MARK: Plans (descriptors and the heuristic's algorithm, made once per shape)

    /// An operand's geometry (its address excluded).
    private struct OperandShape: Hashable {
        let rows: Int, cols: Int, leading: Int, batchStride: Int
        init(_ operand: Operand) {
            (rows, cols, leading, batchStride) = (operand.rows, operand.cols, operand.leading, operand.batchStride)
        }
    }

    private struct PlanKey: Hashable {
        let type: Int32, outputType: Int32?
        let transposeA: Bool, transposeB: Bool
        let a: OperandShape, b: OperandShape, d: OperandShape
        let batch: Int
        let bias: Bool, rowScaled: Bool
        let workspaceBytes: Int
    }

    /// The matmul descriptor, the three layouts and the chosen algorithm of one shape.
    private final class Plan {
        var desc: OpaquePointer?
        var layouts: [OpaquePointer?] = []
        let algorithm = UnsafeMutableRawPointer.allocate(byteCount: Value.heuristicResultSize, alignment: 8)
        let release: (Plan) -> Void
        init(release: @escaping (Plan) -> Void) { self.release = release }
        deinit {
            release(self)
            algorithm.deallocate()
        }
    }

    /// Plans kept per shape; a model has a few dozen shapes, so the cache starts over past this.
    private static let planLimit = 1024

    /// `rowScales` are set before the heuristic runs: cuBLASLt refuses vector scale modes whose
    /// pointers are still null (CUBLAS_STATUS_INVALID_VALUE); each call sets its own afterwards.
    private func makePlan(_ key: PlanKey, dtype: DType, rowScales: (a: UInt64, b: UInt64)?) throws -> Plan {
        let plan = Plan { [descDestroy, layoutDestroy] plan in
            _ = descDestroy(plan.desc)
            plan.layouts.forEach { _ = layoutDestroy($0) }
        }
        try check(descCreate(&plan.desc, Value.compute32F, Value.r32F), "cublasLtMatmulDescCreate")
        var opA: Int32 = key.transposeA ? 1 : 0, opB: Int32 = key.transposeB ? 1 : 0
        try check(descSet(plan.desc, Value.transA, &opA, 4), "cublasLtMatmulDescSetAttribute(TRANSA)")
        try check(descSet(plan.desc, Value.transB, &opB, 4), "cublasLtMatmulDescSetAttribute(TRANSB)")
        if key.rowScaled, let rowScales {
            var mode = Value.scaleOuterVector32F
            var aScales = rowScales.a, bScales = rowScales.b
            try check(descSet(plan.desc, Value.aScaleMode, &mode, 4), "cublasLtMatmulDescSetAttribute(A_SCALE_MODE)")
            try check(descSet(plan.desc, Value.bScaleMode, &mode, 4), "cublasLtMatmulDescSetAttribute(B_SCALE_MODE)")
            try check(descSet(plan.desc, Value.aScalePointer, &aScales, 8), "cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)")
            try check(descSet(plan.desc, Value.bScalePointer, &bScales, 8), "cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)")
        }
        if key.bias {
            var epilogue = Value.epilogueBias
            try check(descSet(plan.desc, Value.epilogue, &epilogue, 4), "cublasLtMatmulDescSetAttribute(EPILOGUE)")
        }
        for (index, operand) in [key.a, key.b, key.d].enumerated() {
            var layout: OpaquePointer?
            try check(layoutCreate(&layout, index == 2 ? key.outputType ?? key.type : key.type, UInt64(operand.rows),
                                   UInt64(operand.cols), Int64(operand.leading)),
                      "cublasLtMatrixLayoutCreate")
            plan.layouts.append(layout)
            if key.batch > 1 {
                var count = Int32(key.batch), stride = Int64(operand.batchStride)
                try check(layoutSet(layout, Value.batchCount, &count, 4), "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)")
                try check(layoutSet(layout, Value.stridedBatchOffset, &stride, 8),
                          "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)")
            }
        }
        var preference: OpaquePointer?
        try check(preferenceCreate(&preference), "cublasLtMatmulPreferenceCreate")
        defer { _ = preferenceDestroy(preference) }
        var limit = UInt64(key.workspaceBytes)
        try check(preferenceSet(preference, Value.maxWorkspaceBytes, &limit, 8),
                  "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)")
        var found: Int32 = 0
        try check(heuristic(handle, plan.desc, plan.layouts[0], plan.layouts[1], plan.layouts[2], plan.layouts[2],
                            preference, 1, plan.algorithm, &found),
                  "cublasLtMatmulAlgoGetHeuristic")
        guard found > 0, plan.algorithm.load(fromByteOffset: Value.stateOffset, as: Int32.self) == 0 else {
            throw CUDAError.cublas(call: "cublasLtMatmulAlgoGetHeuristic (no algorithm for \(dtype) "
                                   + "\(key.d.rows)x\(key.d.cols)x\(key.transposeA ? key.a.rows : key.a.cols)"
                                   + (key.rowScaled ? " with row scales" : "") + ")", status: 15)
        }
        if plans.count >= Self.planLimit { plans.removeAll() }
        plans[key] = plan
        return plan
    }
}
