import Foundation
import ZImageTensor

/// The CUDA backend: device memory from a caching pool, one stream on which every op is queued
/// asynchronously, kernels compiled at run time by NVRTC (cached on disk), and cuBLASLt for
/// matrix products. Everything is opened with `dlopen`, so the same binary runs without a GPU.
///
/// Every Backend op runs here; the fused ops and attention take tensor-core kernels in bf16
/// (Kernels/*.cu) and fall back to the composed reference (FusedReference) elsewhere.
///
/// One thread at a time queues ops (a worker owns its backend; the caches of kernels, plans and
/// shared-memory limits are not locked). Only tensor release may come from any thread: the
/// memory pool has its own lock.
public final class CUDABackend: Backend, ConvertingUpload, DeviceMemoryReporting {
    public let device: Device
    /// The GPU this backend drives.
    public let info: CUDADeviceInfo
    let driver: CUDADriver
    let nvrtc: NVRTC
    private let context: OpaquePointer?
    /// The stream all work is queued on.
    let stream: OpaquePointer?
    private let pool: CUDAMemoryPool
    private let poolLock = NSLock()
    private let kernelCache: KernelCache
    private var module: OpaquePointer?
    private var functions: [String: OpaquePointer] = [:]
    private var sharedLimits: [String: Int] = [:]
    private var blas: CUBLASLt?
    private var dnn: CUDNN?
    private var dnnTried = false
    private var sdpa: CUDNNAttention?
    var staging: StagingBuffers?
    /// The stream streamed weights are copied on, and the event marking the compute stream's
    /// work before each batch of copies (made on first use).
    var copyStream: (stream: OpaquePointer?, computeMark: OpaquePointer?)?
    /// Set once cuBLASLt refuses outer-vector FP8 scales (or by `ZIMAGE_FP8_OWN_SCALES=1`): the
    /// row and column scales then go on in a pass of our own after an unscaled FP8 GEMM.
    var outerVectorScalesRefused = ProcessInfo.processInfo.environment["ZIMAGE_FP8_OWN_SCALES"] == "1"
    private var sdpaTried = false
    /// Convolution filters in the KRSC layout cuDNN's NHWC algorithms read, by source weight.
    var convolutionFilters: [FilterKey: (source: Tensor, filter: Tensor)] = [:]
    private var workspace: (address: CUdeviceptr, size: Int)?
    static let workspaceBytes = 32 << 20
    /// When set, every new tensor is filled with 0xFF bytes (NaN in every float type), so an op
    /// that fails to write part of its output cannot pass a check. For tests and checks only.
    public var poisonAllocations = false
    /// Whether the fused kernels and flash attention run (else the composed reference ops do).
    /// `ZIMAGE_CUDA_REFERENCE_OPS=1` turns them off, for comparisons and "before" profiles.
    public var useFusedKernels = ProcessInfo.processInfo.environment["ZIMAGE_CUDA_REFERENCE_OPS"] != "1"
    /// Whether FP8 weights are widened for a dense GEMM even where FP8 tensor cores exist
    /// (`ZIMAGE_FP8_WIDEN=1`, or set in tests): the path of GPUs before compute capability 8.9,
    /// testable on a Hopper card (`widensFloat8Weights`).
    public var forcesFloat8Widening = ProcessInfo.processInfo.environment["ZIMAGE_FP8_WIDEN"] == "1"
    /// Per-op timing (`ZIMAGE_PROFILE=1` or `startProfiling()`); nil when off.
    public private(set) var profiler: CUDAProfiler?

    /// Opens GPU `ordinal`. Throws `CUDAError.libraryNotFound` ("no CUDA driver found") where
    /// there is no driver, `CUDAError.noSuchDevice` where there is no such GPU.
    public init(ordinal: Int = 0, nvrtc: NVRTC? = nil, kernelCache: KernelCache? = nil) throws {
        let driver = try CUDADriver.shared()
        self.driver = driver
        self.info = try driver.device(ordinal)
        self.device = .cuda(ordinal)
        self.nvrtc = try nvrtc ?? NVRTC()
        self.kernelCache = kernelCache ?? KernelCache(directory: KernelCache.defaultDirectory())
        var handle: Int32 = 0
        try driver.check(driver.cuDeviceGet(&handle, Int32(ordinal)), "cuDeviceGet")
        var context: OpaquePointer?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&context, handle), "cuDevicePrimaryCtxRetain")
        self.context = context
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var stream: OpaquePointer?
        try driver.check(driver.cuStreamCreate(&stream, 1), "cuStreamCreate")
        self.stream = stream
        self.pool = CUDAMemoryPool(driver: driver, device: .cuda(ordinal))
        DynamicLibrary.preloadInBackground()
        if ProcessInfo.processInfo.environment["ZIMAGE_PROFILE"] == "1" { startProfiling() }
    }

    // MARK: Profiling

    /// Starts timing every op (see `CUDAProfiler`).
    public func startProfiling() { profiler = CUDAProfiler(driver: driver) }

    public func beginStage(_ name: String) {
        profiler?.begin(stage: name) { try synchronize() }
    }

    /// The profile table so far (nil when not profiling).
    public func profileReport() -> String? {
        guard let table = profiler?.report(synchronize: { try synchronize() }) else { return nil }
        return [table, stagingReport()].compactMap { $0 }.joined(separator: "\n")
    }

    /// Runs `body`, timing it as op kind `op` when profiling (ops inside ops count to the outer one).
    func profiled<T>(_ op: String, _ body: () throws -> T) throws -> T {
        guard let profiler, profiler.depth == 0 else { return try body() }
        var result: T?
        try profiler.record(op, stream: stream) { result = try body() }
        guard let result else { throw TensorError.invalidArgument(op: op, detail: "profiled op returned nothing") }
        return result
    }

    /// Makes this backend's context current on the calling thread (driver calls need it).
    func makeCurrent() throws { try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent") }

    // MARK: Memory

    public func allocate(shape: Shape, dtype: DType) throws -> Tensor {
        guard let count = Shape.checkedCount(shape.dims) else {
            throw TensorError.invalidArgument(op: "allocate", detail: "invalid shape \(shape)")
        }
        try makeCurrent()
        let (address, size) = try poolLock.withLock { try pool.allocate(max(count * dtype.byteSize, 1)) }
        let tensor = Tensor(storage: TensorStorage(backend: self, address: UInt(address), byteCount: size),
                            shape: shape, dtype: dtype)
        if poisonAllocations { try fill(tensor, byte: 0xFF) }
        return tensor
    }

    public func release(address: UInt, byteCount: Int) {
        poolLock.withLock { pool.release(CUdeviceptr(address), size: byteCount) }
    }

    /// Bytes of device memory held by live tensors, and by the pool's cache.
    public var memoryInUse: (tensors: Int, cached: Int) { poolLock.withLock { (pool.inUseBytes, pool.cachedBytes) } }

    /// The pool's high-water marks and the driver's free/total (`DeviceMemoryReporting`).
    public func poolMemoryReport() -> DeviceMemoryReport {
        let (inUse, cached, peak, peakReserved) = poolLock.withLock {
            (pool.inUseBytes, pool.cachedBytes, pool.peakInUseBytes, pool.peakReservedBytes)
        }
        let driverView = try? deviceMemory()
        return DeviceMemoryReport(device: device.description, poolInUseBytes: inUse, poolCachedBytes: cached,
                                  poolPeakInUseBytes: peak, poolPeakReservedBytes: peakReserved,
                                  driverFreeBytes: driverView?.free, driverTotalBytes: driverView?.total)
    }

    /// Starts a new high-water mark at the pool's current use.
    public func resetPoolPeak() { poolLock.withLock { pool.resetPeak() } }

    public func limitPool(to bytes: Int?) { poolLock.withLock { pool.limitBytes = bytes } }

    public var poolOverLimitAllocations: Int { poolLock.withLock { pool.overLimitAllocations } }

    /// Frees the pool's cached blocks (the driver gets them back).
    public func trimPool() throws {
        try makeCurrent()
        try poolLock.withLock { try pool.trim() }
    }

    /// Free and total device memory as the driver reports them.
    public func deviceMemory() throws -> (free: Int, total: Int) {
        try makeCurrent()
        var free = 0, total = 0
        try driver.check(driver.cuMemGetInfo(&free, &total), "cuMemGetInfo")
        return (free, total)
    }

    public func upload(_ bytes: UnsafeRawBufferPointer, shape: Shape, dtype: DType) throws -> Tensor {
        let tensor = try allocate(shape: shape, dtype: dtype)
        guard bytes.count == tensor.byteCount else {
            throw TensorError.shapeMismatch(op: "upload", detail: "\(bytes.count) bytes for \(shape) \(dtype)")
        }
        if Self.stagedUploads, bytes.count >= Self.stagedUploadMinimum, let staging = try? stagingBuffers() {
            try stagedUpload(bytes, to: CUdeviceptr(tensor.address), staging: staging)
        } else if bytes.count > 0 {
            try driver.check(driver.cuMemcpyHtoDAsync(CUdeviceptr(tensor.address), bytes.baseAddress, bytes.count,
                                                      stream), "cuMemcpyHtoDAsync")
        }
        return tensor
    }

    public func download(_ tensor: Tensor, into destination: UnsafeMutableRawBufferPointer) throws {
        guard destination.count == tensor.byteCount else {
            throw TensorError.shapeMismatch(op: "download", detail: "\(destination.count) bytes for \(tensor)")
        }
        try makeCurrent()
        if destination.count > 0 {
            try driver.check(driver.cuMemcpyDtoHAsync(destination.baseAddress, CUdeviceptr(tensor.address),
                                                      destination.count, stream), "cuMemcpyDtoHAsync")
        }
        try synchronize()
    }

    public func synchronize() throws {
        try makeCurrent()
        try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
        if let copyStream { try driver.check(driver.cuStreamSynchronize(copyStream.stream), "cuStreamSynchronize") }
    }

    /// Fills a tensor's bytes with `byte` (tests poison outputs with it).
    public func fill(_ tensor: Tensor, byte: UInt8) throws {
        try makeCurrent()
        try driver.check(driver.cuMemsetD8Async(CUdeviceptr(tensor.address), byte, tensor.byteCount, stream),
                         "cuMemsetD8Async")
    }

    // MARK: Kernels

    /// The compiled kernel `name` from the kernel library (compiled, or read from the cache, once).
    func function(_ name: String) throws -> OpaquePointer {
        if let function = functions[name] { return function }
        try makeCurrent()
        if module == nil {
            let architecture = info.computeCapability.major * 10 + info.computeCapability.minor
            let source = CUDAKernels.source, options = CUDAKernels.compileOptions
            let cubin = try kernelCache.cubin(source: source, options: options, architecture: architecture,
                                              compilerVersion: nvrtc.version()) {
                try nvrtc.compile(source: source, name: "zimage_kernels.cu", architecture: architecture,
                                  options: options)
            }
            var loaded: OpaquePointer?
            try cubin.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                try driver.check(driver.cuModuleLoadData(&loaded, base), "cuModuleLoadData")
            }
            module = loaded
        }
        var function: OpaquePointer?
        try driver.check(driver.cuModuleGetFunction(&function, module, name), "cuModuleGetFunction(\(name))")
        guard let function else { throw CUDAError.missingSymbol(library: "zimage kernels", symbol: name) }
        functions[name] = function
        return function
    }

    /// A kernel argument, passed by value.
    enum Argument {
        case address(UInt)
        case int32(Int32)
        case int64(Int64)
        case float(Float)
        /// A plain struct, given as its bytes.
        case bytes([UInt8])
    }

    /// Queues kernel `name` on the stream.
    func launch(_ name: String, blocks: Int, threads: Int, sharedBytes: Int = 0, _ arguments: [Argument]) throws {
        try launch(name, grid: (blocks, 1, 1), threads: threads, sharedBytes: sharedBytes, arguments)
    }

    /// Queues kernel `name` on a 3-D grid; `sharedBytes` above 48 KiB raises the kernel's limit first.
    func launch(_ name: String, grid: (Int, Int, Int), threads: Int, sharedBytes: Int = 0,
                _ arguments: [Argument]) throws {
        let function = try function(name)
        if sharedBytes > 48 << 10, (sharedLimits[name] ?? 0) < sharedBytes {
            // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            try driver.check(driver.cuFuncSetAttribute(function, 8, Int32(sharedBytes)), "cuFuncSetAttribute(\(name))")
            sharedLimits[name] = sharedBytes
        }
        // Every argument's value in one buffer (16-byte slots; a struct takes as many as it needs),
        // and the array of pointers to them that cuLaunchKernel reads.
        let slots = arguments.map { argument -> Int in
            if case .bytes(let bytes) = argument { return max((bytes.count + 15) / 16, 1) }
            return 1
        }
        let values = UnsafeMutableRawPointer.allocate(byteCount: max(slots.reduce(0, +), 1) * 16, alignment: 16)
        defer { values.deallocate() }
        var parameters = [UnsafeMutableRawPointer?](repeating: nil, count: arguments.count)
        var offset = 0
        for (index, argument) in arguments.enumerated() {
            let pointer = values + offset
            switch argument {
            case .address(let value): pointer.storeBytes(of: UInt64(value), as: UInt64.self)
            case .int32(let value): pointer.storeBytes(of: value, as: Int32.self)
            case .int64(let value): pointer.storeBytes(of: value, as: Int64.self)
            case .float(let value): pointer.storeBytes(of: value, as: Float.self)
            case .bytes(let bytes):
                bytes.withUnsafeBytes { if let base = $0.baseAddress { pointer.copyMemory(from: base, byteCount: bytes.count) } }
            }
            parameters[index] = pointer
            offset += slots[index] * 16
        }
        try makeCurrent()
        let result = parameters.withUnsafeMutableBufferPointer {
            driver.cuLaunchKernel(function, UInt32(max(grid.0, 1)), UInt32(max(grid.1, 1)), UInt32(max(grid.2, 1)),
                                  UInt32(threads), 1, 1, UInt32(sharedBytes), stream, $0.baseAddress, nil)
        }
        try driver.check(result, "cuLaunchKernel(\(name))")
    }

    /// Blocks for a grid-stride loop over `count` elements.
    func gridBlocks(_ count: Int, threads: Int = 256) -> Int {
        max(1, min((count + threads - 1) / threads, info.multiprocessors * 16))
    }

    func suffix(_ dtype: DType, _ op: String) throws -> String {
        guard let suffix = CUDAKernels.suffix(dtype) else { throw TensorError.unsupportedDType(op: op, dtype: dtype) }
        return suffix
    }

    func cublas() throws -> CUBLASLt {
        if let blas { return blas }
        try makeCurrent()
        let created = try CUBLASLt()
        blas = created
        return created
    }

    /// The pinned staging buffers of large uploads, made on first use.
    func stagingBuffers() throws -> StagingBuffers {
        if let staging { return staging }
        try makeCurrent()
        let made = try StagingBuffers(driver: driver, bytes: Self.stagingChunkBytes)
        staging = made
        return made
    }

    /// cuDNN's graph API for fused attention, opened on first use; nil where cuDNN is absent or
    /// older than 9.13 (attention then uses our kernel).
    func cudnnGraph() -> CUDNNAttention? {
        if sdpaTried { return sdpa }
        sdpaTried = true
        try? makeCurrent()
        sdpa = try? CUDNNAttention(stream: stream)
        return sdpa
    }

    /// cuDNN, opened on first use; nil where it is absent (convolutions then use im2col).
    func cudnn() -> CUDNN? {
        if dnnTried { return dnn }
        dnnTried = true
        try? makeCurrent()
        dnn = try? CUDNN(stream: stream)
        return dnn
    }

    func matmulWorkspace() throws -> (address: CUdeviceptr, size: Int) {
        if let workspace { return workspace }
        let (address, size) = try poolLock.withLock { try pool.allocate(Self.workspaceBytes) }
        workspace = (address, size)
        return (address, size)
    }

    // MARK: Timing

    /// Times `body` with device events: the median of `iterations` runs after `warmup` runs, in ms.
    public func measure(iterations: Int, warmup: Int = 3, _ body: () throws -> Void) throws -> Double {
        try makeCurrent()
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        var start: OpaquePointer?, end: OpaquePointer?
        try driver.check(driver.cuEventCreate(&start, 0), "cuEventCreate")
        try driver.check(driver.cuEventCreate(&end, 0), "cuEventCreate")
        defer {
            _ = driver.cuEventDestroy(start)
            _ = driver.cuEventDestroy(end)
        }
        for _ in 0..<iterations {
            try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord")
            try body()
            try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord")
            try driver.check(driver.cuEventSynchronize(end), "cuEventSynchronize")
            var milliseconds: Float = 0
            try driver.check(driver.cuEventElapsedTime(&milliseconds, start, end), "cuEventElapsedTime")
            times.append(Double(milliseconds))
        }
        times.sort()
        return times.isEmpty ? 0 : times[times.count / 2]
    }
}
