import ZImageTensor

/// A caching allocator for device memory, in the spirit of PyTorch's: freed blocks are kept by
/// size class and reused. All work runs on one stream, so a block released by a tensor can be
/// handed out again at once (later work on the stream runs after earlier reads of it).
final class CUDAMemoryPool {
    private let driver: CUDADriver
    private let device: Device
    private var cached: [Int: [CUdeviceptr]] = [:]
    /// Bytes held in the cache, not in use.
    private(set) var cachedBytes = 0
    /// Bytes handed out and not yet released.
    private(set) var inUseBytes = 0 {
        didSet { peakInUseBytes = max(peakInUseBytes, inUseBytes) }
    }
    /// The most bytes handed out at once since the last `resetPeak` (the high-water mark).
    private(set) var peakInUseBytes = 0
    /// The most bytes held from the driver at once (in use + cached) since the last `resetPeak`.
    private(set) var peakReservedBytes = 0
    /// Most bytes the pool should hold from the driver (a run's `--vram-budget` less the context's
    /// share), nil for no limit. A request that would pass it gives cached blocks back to the
    /// driver first (largest first), trading a few frees for the promise; requests beyond it still
    /// succeed when the device has room, and are counted in `overLimitAllocations`.
    var limitBytes: Int?
    /// Allocations made while the pool held more than `limitBytes` (cache already given back).
    private(set) var overLimitAllocations = 0

    init(driver: CUDADriver, device: Device) {
        self.driver = driver
        self.device = device
    }

    /// Size class of a request: 512-byte steps up to 1 MiB, then 2 MiB steps.
    static func roundedSize(_ bytes: Int) -> Int {
        let small = 512, large = 2 << 20
        let unit = bytes <= (1 << 20) ? small : large
        return max(unit, (bytes + unit - 1) / unit * unit)
    }

    /// A block of at least `bytes`; returns its address and its size class.
    func allocate(_ bytes: Int) throws -> (CUdeviceptr, Int) {
        let size = Self.roundedSize(bytes)
        if var blocks = cached[size], let address = blocks.popLast() {
            cached[size] = blocks
            cachedBytes -= size
            inUseBytes += size
            return (address, size)
        }
        if let limit = limitBytes, inUseBytes + cachedBytes + size > limit {
            try release(cachedBytesAbove: limit - inUseBytes - size)
            if inUseBytes + size > limit { overLimitAllocations += 1 }
        }
        var address: CUdeviceptr = 0
        var result = driver.cuMemAlloc(&address, size)
        if result == CUDAError.outOfMemoryCode {
            // Give the cache back to the driver and try once more before failing.
            try trim()
            result = driver.cuMemAlloc(&address, size)
        }
        if result == CUDAError.outOfMemoryCode {
            var free = 0, total = 0
            _ = driver.cuMemGetInfo(&free, &total)
            throw TensorError.outOfMemory(device: device, requestedBytes: size, freeBytes: free)
        }
        try driver.check(result, "cuMemAlloc(\(size))")
        inUseBytes += size
        peakReservedBytes = max(peakReservedBytes, inUseBytes + cachedBytes)
        return (address, size)
    }

    /// Returns a block to the cache.
    func release(_ address: CUdeviceptr, size: Int) {
        cached[size, default: []].append(address)
        cachedBytes += size
        inUseBytes -= size
    }

    /// Starts a new high-water mark at what is held now.
    func resetPeak() {
        peakInUseBytes = inUseBytes
        peakReservedBytes = inUseBytes + cachedBytes
    }

    /// Frees cached blocks, largest first, until at most `keep` bytes stay cached.
    private func release(cachedBytesAbove keep: Int) throws {
        for size in cached.keys.sorted(by: >) where cachedBytes > max(keep, 0) {
            while cachedBytes > max(keep, 0), var blocks = cached[size], let address = blocks.popLast() {
                cached[size] = blocks.isEmpty ? nil : blocks
                try driver.check(driver.cuMemFree(address), "cuMemFree(\(size))")
                cachedBytes -= size
            }
        }
    }

    /// Frees every cached block.
    func trim() throws {
        for (size, blocks) in cached {
            for address in blocks { try driver.check(driver.cuMemFree(address), "cuMemFree(\(size))") }
        }
        cached.removeAll()
        cachedBytes = 0
    }
}
