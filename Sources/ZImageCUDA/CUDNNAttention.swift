import Foundation

/// cuDNN's fused flash attention through its graph (backend) API: one `SDPA_FWD` operation
/// (cuDNN 9.13 and later), a plan per shape made once and cached, executed on the backend's
/// stream. On an H200 it runs the DiT's 4128 × 30 × 128 attention in 0.47 ms, against 1.12 ms
/// for our mma.sync kernel (bench/kernels/cudnn_sdpa_probe.py, the prototype this follows call
/// for call; the graph and every attribute: docs/notes/cudnn-sdpa-graph.md).
///
/// Tensors are tokens-major `[B, S, H, D]` bf16, described to cuDNN as logical (b, h, s, d) with
/// strides (S·H·D, D, H·D, 1); key and value may have fewer heads (grouped-query attention).
/// No mask and no causal variant here: those shapes keep our kernel.
final class CUDNNAttention {
    typealias Status = Int32
    private let createDescriptor: @convention(c) (Int32, UnsafeMutablePointer<OpaquePointer?>) -> Status
    private let destroyDescriptor: @convention(c) (OpaquePointer?) -> Status
    private let setAttribute: @convention(c) (OpaquePointer?, Int32, Int32, Int64, UnsafeRawPointer) -> Status
    private let getAttribute: @convention(c) (OpaquePointer?, Int32, Int32, Int64, UnsafeMutablePointer<Int64>,
                                              UnsafeMutableRawPointer?) -> Status
    private let finalize: @convention(c) (OpaquePointer?) -> Status
    private let execute: @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?) -> Status
    private let getErrorString: @convention(c) (Status) -> UnsafePointer<CChar>?
    private let destroyHandle: @convention(c) (OpaquePointer?) -> Status
    private let library: DynamicLibrary
    private var handle: OpaquePointer?
    private var plans: [Key: Plan] = [:]
    /// Shapes no engine accepted (not retried).
    private var refused: Set<Key> = []

    /// The first cuDNN with the SDPA_FWD operation.
    static let minimumVersion = 91_300

    /// One attention shape (all of an op's tensors follow from it).
    struct Key: Hashable {
        var batch: Int, queryHeads: Int, keyHeads: Int, queryLength: Int, keyLength: Int, headDim: Int
    }

    private final class Plan {
        var descriptors: [OpaquePointer?] = []
        var plan: OpaquePointer?
        var workspace = 0
        let destroy: @convention(c) (OpaquePointer?) -> Status
        init(destroy: @escaping @convention(c) (OpaquePointer?) -> Status) { self.destroy = destroy }
        deinit { for descriptor in ([plan] + descriptors.reversed()) where descriptor != nil { _ = destroy(descriptor) } }
    }

    // cudnn_graph_v9.h values.
    private enum Descriptor {
        static let engineConfig: Int32 = 3, engineHeuristics: Int32 = 4, executionPlan: Int32 = 5
        static let operationGraph: Int32 = 15, variantPack: Int32 = 16, tensor: Int32 = 17, sdpaForward: Int32 = 41
    }
    private enum AttributeType {
        static let handle: Int32 = 0, dataType: Int32 = 1, boolean: Int32 = 2, int64: Int32 = 3, voidPointer: Int32 = 6
        static let heuristicMode: Int32 = 8, descriptor: Int32 = 15
    }
    private enum Attribute {
        static let tensorAlignment: Int32 = 900, tensorDataType: Int32 = 901, tensorDimensions: Int32 = 902
        static let tensorStrides: Int32 = 903, tensorUniqueID: Int32 = 906, tensorByValue: Int32 = 908
        static let sdpaQuery: Int32 = 2800, sdpaKey: Int32 = 2801, sdpaValue: Int32 = 2802, sdpaOutput: Int32 = 2803
        static let sdpaScale: Int32 = 2805
        static let graphHandle: Int32 = 800, graphOperations: Int32 = 801
        static let heuristicsMode: Int32 = 200, heuristicsGraph: Int32 = 201, heuristicsResults: Int32 = 202
        static let planHandle: Int32 = 400, planEngineConfig: Int32 = 401, planWorkspace: Int32 = 402
        static let packUniqueIDs: Int32 = 1000, packPointers: Int32 = 1001, packWorkspace: Int32 = 1003
    }
    private static let bfloat16: Int32 = 9, float: Int32 = 0
    private static let heuristicModeA: Int32 = 3, heuristicModeFallback: Int32 = 2
    private enum UID { static let query: Int64 = 1, key: Int64 = 2, value: Int64 = 3, output: Int64 = 4, scale: Int64 = 5 }

    /// Opens cuDNN's graph API on `stream`; throws where libcudnn is absent or older than 9.13.
    init(stream: OpaquePointer?) throws {
        let lib = try DynamicLibrary(candidates: CUDNN.candidates(), library: "libcudnn")
        library = lib
        let version: @convention(c) () -> Int = try lib.function("cudnnGetVersion")
        guard version() >= Self.minimumVersion else {
            throw CUDAError.unsupported("cuDNN \(version()) has no SDPA_FWD operation (needs 9.13 or later)")
        }
        createDescriptor = try lib.function("cudnnBackendCreateDescriptor")
        destroyDescriptor = try lib.function("cudnnBackendDestroyDescriptor")
        setAttribute = try lib.function("cudnnBackendSetAttribute")
        getAttribute = try lib.function("cudnnBackendGetAttribute")
        finalize = try lib.function("cudnnBackendFinalize")
        execute = try lib.function("cudnnBackendExecute")
        getErrorString = try lib.function("cudnnGetErrorString")
        destroyHandle = try lib.function("cudnnDestroy")
        let create: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status = try lib.function("cudnnCreate")
        let setStream: @convention(c) (OpaquePointer?, OpaquePointer?) -> Status = try lib.function("cudnnSetStream")
        try check(create(&handle), "cudnnCreate")
        try check(setStream(handle, stream), "cudnnSetStream")
    }

    deinit {
        plans.removeAll()
        _ = destroyHandle(handle)
    }

    private func check(_ status: Status, _ call: String) throws {
        guard status == 0 else {
            let message = getErrorString(status).map { String(cString: $0) } ?? "status \(status)"
            throw CUDAError.cudnn(call: call, status: status, message: message)
        }
    }

    private func set(_ descriptor: OpaquePointer?, _ name: Int32, _ type: Int32, _ values: [Int64]) throws {
        try values.withUnsafeBytes { try check(setAttribute(descriptor, name, type, Int64(values.count), $0.baseAddress!),
                                               "cudnnBackendSetAttribute(\(name))") }
    }

    private func set(_ descriptor: OpaquePointer?, _ name: Int32, _ type: Int32, int32 value: Int32) throws {
        var value = value
        try check(setAttribute(descriptor, name, type, 1, &value), "cudnnBackendSetAttribute(\(name))")
    }

    private func set(_ descriptor: OpaquePointer?, _ name: Int32, descriptors: [OpaquePointer?]) throws {
        try descriptors.withUnsafeBytes {
            try check(setAttribute(descriptor, name, AttributeType.descriptor, Int64(descriptors.count), $0.baseAddress!),
                      "cudnnBackendSetAttribute(\(name))")
        }
    }

    private func make(_ type: Int32, in plan: Plan) throws -> OpaquePointer? {
        var descriptor: OpaquePointer?
        try check(createDescriptor(type, &descriptor), "cudnnBackendCreateDescriptor(\(type))")
        plan.descriptors.append(descriptor)
        return descriptor
    }

    private func tensor(_ uid: Int64, dims: [Int], strides: [Int], type: Int32, byValue: Bool = false,
                        in plan: Plan) throws -> OpaquePointer? {
        let t = try make(Descriptor.tensor, in: plan)
        try set(t, Attribute.tensorDataType, AttributeType.dataType, int32: type)
        try set(t, Attribute.tensorDimensions, AttributeType.int64, dims.map(Int64.init))
        try set(t, Attribute.tensorStrides, AttributeType.int64, strides.map(Int64.init))
        try set(t, Attribute.tensorUniqueID, AttributeType.int64, [uid])
        try set(t, Attribute.tensorAlignment, AttributeType.int64, [16])
        if byValue {
            var yes = true
            try check(setAttribute(t, Attribute.tensorByValue, AttributeType.boolean, 1, &yes),
                      "cudnnBackendSetAttribute(IS_BY_VALUE)")
        }
        try check(finalize(t), "cudnnBackendFinalize(tensor \(uid))")
        return t
    }

    /// Builds (once) the plan for `key`; nil where no engine takes the shape.
    private func plan(_ key: Key) throws -> Plan? {
        if let plan = plans[key] { return plan }
        guard !refused.contains(key) else { return nil }
        let plan = Plan(destroy: destroyDescriptor)
        let (b, hq, hk, sq, sk, d) = (key.batch, key.queryHeads, key.keyHeads, key.queryLength, key.keyLength, key.headDim)
        let q = try tensor(UID.query, dims: [b, hq, sq, d], strides: [sq * hq * d, d, hq * d, 1], type: Self.bfloat16, in: plan)
        let k = try tensor(UID.key, dims: [b, hk, sk, d], strides: [sk * hk * d, d, hk * d, 1], type: Self.bfloat16, in: plan)
        let v = try tensor(UID.value, dims: [b, hk, sk, d], strides: [sk * hk * d, d, hk * d, 1], type: Self.bfloat16, in: plan)
        let o = try tensor(UID.output, dims: [b, hq, sq, d], strides: [sq * hq * d, d, hq * d, 1], type: Self.bfloat16, in: plan)
        let scale = try tensor(UID.scale, dims: [1, 1, 1, 1], strides: [1, 1, 1, 1], type: Self.float, byValue: true, in: plan)
        let op = try make(Descriptor.sdpaForward, in: plan)
        try set(op, Attribute.sdpaQuery, descriptors: [q])
        try set(op, Attribute.sdpaKey, descriptors: [k])
        try set(op, Attribute.sdpaValue, descriptors: [v])
        try set(op, Attribute.sdpaOutput, descriptors: [o])
        try set(op, Attribute.sdpaScale, descriptors: [scale])
        try check(finalize(op), "cudnnBackendFinalize(SDPA_FWD)")
        let graph = try make(Descriptor.operationGraph, in: plan)
        try set(graph, Attribute.graphOperations, descriptors: [op])
        var handle = self.handle
        try check(setAttribute(graph, Attribute.graphHandle, AttributeType.handle, 1, &handle),
                  "cudnnBackendSetAttribute(OPERATIONGRAPH_HANDLE)")
        try check(finalize(graph), "cudnnBackendFinalize(operation graph)")
        for mode in [Self.heuristicModeA, Self.heuristicModeFallback] {
            let heuristics = try make(Descriptor.engineHeuristics, in: plan)
            try set(heuristics, Attribute.heuristicsGraph, descriptors: [graph])
            try set(heuristics, Attribute.heuristicsMode, AttributeType.heuristicMode, int32: mode)
            guard finalize(heuristics) == 0 else { continue }
            var count: Int64 = 0
            guard getAttribute(heuristics, Attribute.heuristicsResults, AttributeType.descriptor, 0, &count, nil) == 0,
                  count > 0 else { continue }
            // The caller creates the engine-config descriptors; cuDNN fills them in.
            var configs: [OpaquePointer?] = []
            for _ in 0..<min(count, 16) { configs.append(try make(Descriptor.engineConfig, in: plan)) }
            var returned: Int64 = 0
            let requested = Int64(configs.count)
            let status = configs.withUnsafeMutableBytes {
                getAttribute(heuristics, Attribute.heuristicsResults, AttributeType.descriptor, requested,
                             &returned, $0.baseAddress)
            }
            guard status == 0 else { continue }
            for config in configs.prefix(Int(returned)) {
                var candidate: OpaquePointer?
                try check(createDescriptor(Descriptor.executionPlan, &candidate), "cudnnBackendCreateDescriptor(plan)")
                var handle = self.handle
                _ = setAttribute(candidate, Attribute.planHandle, AttributeType.handle, 1, &handle)
                try set(candidate, Attribute.planEngineConfig, descriptors: [config])
                guard finalize(candidate) == 0 else {
                    _ = destroyDescriptor(candidate)
                    continue
                }
                var workspace: Int64 = 0, got: Int64 = 0
                try check(getAttribute(candidate, Attribute.planWorkspace, AttributeType.int64, 1, &got, &workspace),
                          "cudnnBackendGetAttribute(WORKSPACE_SIZE)")
                plan.plan = candidate
                plan.workspace = Int(workspace)
                plans[key] = plan
                return plan
            }
        }
        refused.insert(key)
        return nil
    }

    /// The workspace bytes `run` needs for `key`, building its plan; nil where cuDNN has none.
    func workspaceBytes(_ key: Key) throws -> Int? { try plan(key)?.workspace }

    /// `out = softmax(scale · q kᵀ) v` with the plan of `key` (built by `workspaceBytes` first).
    func run(_ key: Key, query: UInt64, key keys: UInt64, value: UInt64, output: UInt64, scale: Float,
             workspace: UInt64) throws {
        guard let plan = plans[key] else {
            throw CUDAError.cudnn(call: "cudnnBackendExecute", status: 3, message: "no plan for \(key)")
        }
        var scaleValue = scale
        try withUnsafeMutablePointer(to: &scaleValue) { scalePointer in
            let pack = Plan(destroy: destroyDescriptor)
            let variants = try make(Descriptor.variantPack, in: pack)
            var pointers: [UnsafeMutableRawPointer?] = [query, keys, value, output].map { UnsafeMutableRawPointer(bitPattern: UInt($0)) }
                + [UnsafeMutableRawPointer(scalePointer)]
            try pointers.withUnsafeMutableBytes {
                try check(setAttribute(variants, Attribute.packPointers, AttributeType.voidPointer, 5, $0.baseAddress!),
                          "cudnnBackendSetAttribute(DATA_POINTERS)")
            }
            try set(variants, Attribute.packUniqueIDs, AttributeType.int64,
                    [UID.query, UID.key, UID.value, UID.output, UID.scale])
            var space = UnsafeMutableRawPointer(bitPattern: UInt(workspace))
            try check(setAttribute(variants, Attribute.packWorkspace, AttributeType.voidPointer, 1, &space),
                      "cudnnBackendSetAttribute(WORKSPACE)")
            try check(finalize(variants), "cudnnBackendFinalize(variant pack)")
            try check(execute(handle, plan.plan, variants), "cudnnBackendExecute(SDPA_FWD)")
            pointers.removeAll()
        }
    }
}
