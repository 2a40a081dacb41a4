/// Device memory as a backend with memory of its own (a GPU) sees it: what its pool holds now and
/// at most since the last reset, and what the driver says is free on the whole device.
///
/// The pool's numbers are this process's tensors only; the driver's `free`/`total` also count other
/// processes and the driver's own context (cuBLAS workspaces, kernels, cuDNN), so
/// `total − free` is the figure to compare with `nvidia-smi`.
public struct DeviceMemoryReport: Sendable, Equatable, Codable {
    /// The device reported on.
    public var device: String
    /// Bytes held by live tensors now.
    public var poolInUseBytes: Int
    /// Bytes the pool keeps cached for reuse (allocated from the driver, not in use).
    public var poolCachedBytes: Int
    /// The most bytes live tensors held at once since the last reset (the high-water mark).
    public var poolPeakInUseBytes: Int
    /// The most bytes the pool held from the driver at once (in use + cached) since the last reset.
    public var poolPeakReservedBytes: Int
    /// Free bytes on the device as the driver reports them (nil when it could not be asked).
    public var driverFreeBytes: Int?
    /// Total bytes on the device as the driver reports them.
    public var driverTotalBytes: Int?

    /// A report from the pool's and the driver's numbers.
    public init(device: String, poolInUseBytes: Int, poolCachedBytes: Int, poolPeakInUseBytes: Int,
                poolPeakReservedBytes: Int, driverFreeBytes: Int?, driverTotalBytes: Int?) {
        self.device = device
        self.poolInUseBytes = poolInUseBytes
        self.poolCachedBytes = poolCachedBytes
        self.poolPeakInUseBytes = poolPeakInUseBytes
        self.poolPeakReservedBytes = poolPeakReservedBytes
        self.driverFreeBytes = driverFreeBytes
        self.driverTotalBytes = driverTotalBytes
    }

    /// Bytes in use on the whole device by the driver's count (`total − free`; every process).
    public var driverUsedBytes: Int? {
        guard let free = driverFreeBytes, let total = driverTotalBytes, total >= free else { return nil }
        return total - free
    }

    /// One line: "peak 27.7 GiB in tensors, 28.1 GiB held from the driver; device 30.2 GiB of 139.8 GiB in use now".
    public var summary: String {
        var text = "peak \(ByteCount.format(poolPeakInUseBytes)) in tensors, \(ByteCount.format(poolPeakReservedBytes)) "
            + "held from the driver"
        if let used = driverUsedBytes, let total = driverTotalBytes {
            text += "; device \(ByteCount.format(used)) of \(ByteCount.format(total)) in use now"
        }
        return text
    }

    /// The report as JSON-ready values (snake_case keys, bytes), for the server.
    public var object: [String: Any] {
        var object: [String: Any] = [
            "device": device, "pool_in_use_bytes": poolInUseBytes, "pool_cached_bytes": poolCachedBytes,
            "pool_peak_in_use_bytes": poolPeakInUseBytes, "pool_peak_reserved_bytes": poolPeakReservedBytes,
        ]
        object["driver_free_bytes"] = driverFreeBytes
        object["driver_total_bytes"] = driverTotalBytes
        object["driver_used_bytes"] = driverUsedBytes
        return object
    }
}

/// A backend whose device has memory of its own, with a pool that counts it. The CPU backend is
/// not one: its memory is the process's (see `ProcessMemory` in ZImagePipeline).
public protocol DeviceMemoryReporting: AnyObject {
    /// The pool's and the driver's view now (the peak since the last `resetPeakDeviceMemory`).
    func poolMemoryReport() -> DeviceMemoryReport
    /// Starts a new high-water mark at the current use (before a run whose peak is wanted alone).
    func resetPoolPeak()
    /// Gives the pool's cached blocks back to the driver (after a component was freed).
    func trimPool() throws
    /// Keeps what the pool holds from the driver under `bytes` (nil: no limit) by giving cached
    /// blocks back before it grows past it (see `CUDAMemoryPool.limitBytes`).
    func limitPool(to bytes: Int?)
    /// Allocations made past the limit (its cache already given back): nonzero means a run held
    /// more than its plan predicted.
    var poolOverLimitAllocations: Int { get }
}

extension Backend {
    /// This backend's device memory report; nil for a backend without device memory (the CPU).
    public func deviceMemoryReport() -> DeviceMemoryReport? {
        (self as? any DeviceMemoryReporting)?.poolMemoryReport()
    }

    /// Gives cached device memory back to the driver (nothing on a backend without device memory).
    public func releaseCachedDeviceMemory() throws {
        try (self as? any DeviceMemoryReporting)?.trimPool()
    }

    /// Keeps the device memory this process holds under `budgetBytes`: the pool's limit is the
    /// budget less what the driver already holds outside the pool (context, kernels, libraries)
    /// and `margin` for the libraries' later workspaces. Returns the pool's limit (nil on a
    /// backend without device memory).
    @discardableResult
    public func limitDeviceMemory(toBytes budgetBytes: Int, margin: Int = 384 << 20) -> Int? {
        guard let reporting = self as? any DeviceMemoryReporting else { return nil }
        let report = reporting.poolMemoryReport()
        let outside = max((report.driverUsedBytes ?? 0) - report.poolInUseBytes - report.poolCachedBytes, 0)
        let limit = max(budgetBytes - outside - margin, 0)
        reporting.limitPool(to: limit)
        return limit
    }

    /// Resets the device memory high-water mark (nothing on a backend without device memory).
    public func resetPeakDeviceMemory() {
        (self as? any DeviceMemoryReporting)?.resetPoolPeak()
    }
}
