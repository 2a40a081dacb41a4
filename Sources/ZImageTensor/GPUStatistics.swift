/// Live readings of one GPU (from NVML on NVIDIA cards). Every reading is optional: a card or
/// driver that does not report one (power on some boards, clocks in a VM) leaves it nil.
public struct GPUStatistics: Sendable, Equatable, Codable {
    /// The monitor's index of the GPU (NVML's: PCI order, which is CUDA's ordinal unless
    /// `CUDA_DEVICE_ORDER`/`CUDA_VISIBLE_DEVICES` reorder them).
    public var index: Int
    /// The card's name ("NVIDIA H200").
    public var name: String
    public var memoryUsedBytes: Int?
    public var memoryFreeBytes: Int?
    public var memoryTotalBytes: Int?
    /// Percent of the last sample period in which a kernel ran.
    public var utilizationPercent: Int?
    /// Percent of the last sample period in which device memory was read or written.
    public var memoryUtilizationPercent: Int?
    public var powerDrawWatts: Double?
    /// The power limit the driver enforces.
    public var powerLimitWatts: Double?
    public var temperatureCelsius: Int?
    /// Streaming-multiprocessor clock now, MHz.
    public var smClockMHz: Int?
    /// Memory clock now, MHz.
    public var memoryClockMHz: Int?

    /// Readings of GPU `index` named `name`; the rest are filled in by the monitor.
    public init(index: Int, name: String) {
        self.index = index
        self.name = name
    }

    /// JSON-ready values (snake_case keys; readings the card did not give are left out).
    public var object: [String: Any] {
        var object: [String: Any] = ["index": index, "name": name]
        object["memory_used_bytes"] = memoryUsedBytes
        object["memory_free_bytes"] = memoryFreeBytes
        object["memory_total_bytes"] = memoryTotalBytes
        object["utilization_percent"] = utilizationPercent
        object["memory_utilization_percent"] = memoryUtilizationPercent
        object["power_draw_watts"] = powerDrawWatts
        object["power_limit_watts"] = powerLimitWatts
        object["temperature_celsius"] = temperatureCelsius
        object["sm_clock_mhz"] = smClockMHz
        object["memory_clock_mhz"] = memoryClockMHz
        return object
    }

    /// One line for `zimage devices`: only the readings there are.
    public var summary: String {
        var parts: [String] = []
        if let used = memoryUsedBytes, let total = memoryTotalBytes {
            parts.append("memory \(ByteCount.format(used)) used of \(ByteCount.format(total))")
        }
        if let utilizationPercent { parts.append("utilisation \(utilizationPercent) %") }
        if let powerDrawWatts {
            parts.append("power \(Int(powerDrawWatts.rounded())) W" + (powerLimitWatts.map { " of \(Int($0.rounded())) W" } ?? ""))
        }
        if let temperatureCelsius { parts.append("\(temperatureCelsius) °C") }
        if let smClockMHz { parts.append("SM \(smClockMHz) MHz") }
        if let memoryClockMHz { parts.append("memory clock \(memoryClockMHz) MHz") }
        return parts.isEmpty ? "no readings" : parts.joined(separator: ", ")
    }
}
