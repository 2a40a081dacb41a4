import Foundation
import ZImageTensor

/// NVIDIA's management library (`libnvidia-ml.so.1`, installed with the driver), opened with
/// `dlopen` like the other NVIDIA libraries: live memory, utilisation, power, temperature and
/// clocks per GPU. Without it (no driver, a CPU machine) `NVML.shared` is nil and nothing else
/// changes. Symbol names follow nvml.h's versioned mappings (`_v2` where nvml.h maps to them).
public final class NVML: @unchecked Sendable {
    // Immutable after init: function pointers only (NVML's calls are thread-safe).
    private typealias Handle = OpaquePointer
    private let deviceCount: @convention(c) (UnsafeMutablePointer<UInt32>) -> Int32
    private let handleByIndex: @convention(c) (UInt32, UnsafeMutablePointer<Handle?>) -> Int32
    private let getName: @convention(c) (Handle?, UnsafeMutablePointer<CChar>, UInt32) -> Int32
    private let memoryInfo: @convention(c) (Handle?, UnsafeMutablePointer<UInt64>) -> Int32
    private let utilization: @convention(c) (Handle?, UnsafeMutablePointer<UInt32>) -> Int32
    private let powerUsage: @convention(c) (Handle?, UnsafeMutablePointer<UInt32>) -> Int32
    private let powerLimit: @convention(c) (Handle?, UnsafeMutablePointer<UInt32>) -> Int32
    private let temperature: @convention(c) (Handle?, Int32, UnsafeMutablePointer<UInt32>) -> Int32
    private let clockInfo: @convention(c) (Handle?, Int32, UnsafeMutablePointer<UInt32>) -> Int32
    private let library: DynamicLibrary

    /// Where NVML is looked for: `ZIMAGE_NVML_LIBRARY` when set, then the driver's sonames.
    public static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        (environment["ZIMAGE_NVML_LIBRARY"].map { [$0] } ?? []) + ["libnvidia-ml.so.1", "libnvidia-ml.so"]
    }

    private static let loaded: NVML? = try? NVML(candidates: candidates())

    /// The process-wide NVML, initialised once; nil where it is not installed or does not start.
    public static var shared: NVML? { loaded }

    /// Opens and initialises NVML from the first of `candidates` that loads. Throws
    /// `CUDAError.libraryNotFound` where none does, `CUDAError.missingSymbol` for an old library,
    /// `CUDAError.driver` when `nvmlInit` fails (no driver loaded).
    public init(candidates: [String]) throws {
        let lib = try DynamicLibrary(candidates: candidates, library: "libnvidia-ml")
        library = lib
        let initialise: @convention(c) () -> Int32 = try lib.function(anyOf: ["nvmlInit_v2", "nvmlInit"])
        deviceCount = try lib.function(anyOf: ["nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"])
        handleByIndex = try lib.function(anyOf: ["nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"])
        getName = try lib.function("nvmlDeviceGetName")
        memoryInfo = try lib.function("nvmlDeviceGetMemoryInfo")
        utilization = try lib.function("nvmlDeviceGetUtilizationRates")
        powerUsage = try lib.function("nvmlDeviceGetPowerUsage")
        powerLimit = try lib.function("nvmlDeviceGetEnforcedPowerLimit")
        temperature = try lib.function("nvmlDeviceGetTemperature")
        clockInfo = try lib.function("nvmlDeviceGetClockInfo")
        let result = initialise()
        guard result == 0 else {
            throw CUDAError.driver(call: "nvmlInit", code: result, name: "NVML error \(result)", message: "")
        }
    }

    // nvml.h enums: NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, NVML_CLOCK_MEM.
    private static let temperatureGPU: Int32 = 0, clockSM: Int32 = 1, clockMemory: Int32 = 2

    /// The readings of every GPU NVML sees, in its index order; a reading a card refuses is nil.
    public func statistics() -> [GPUStatistics] {
        var count: UInt32 = 0
        guard deviceCount(&count) == 0 else { return [] }
        return (0..<min(count, 64)).compactMap { index in
            var handle: Handle?
            guard handleByIndex(index, &handle) == 0, handle != nil else { return nil }
            return readings(index: Int(index), handle: handle)
        }
    }

    private func readings(index: Int, handle: Handle?) -> GPUStatistics {
        var nameBuffer = [CChar](repeating: 0, count: 96)
        let name = getName(handle, &nameBuffer, UInt32(nameBuffer.count)) == 0
            ? String(cString: nameBuffer) : "GPU \(index)"
        var stats = GPUStatistics(index: index, name: name)
        // nvmlMemory_t: unsigned long long total, free, used.
        var memory = [UInt64](repeating: 0, count: 3)
        if memoryInfo(handle, &memory) == 0 {
            (stats.memoryTotalBytes, stats.memoryFreeBytes, stats.memoryUsedBytes) = (Self.int(memory[0]), Self.int(memory[1]),
                                                                                       Self.int(memory[2]))
        }
        // nvmlUtilization_t: unsigned int gpu, memory (percent).
        var rates = [UInt32](repeating: 0, count: 2)
        if utilization(handle, &rates) == 0 {
            (stats.utilizationPercent, stats.memoryUtilizationPercent) = (Int(rates[0]), Int(rates[1]))
        }
        var value: UInt32 = 0
        if powerUsage(handle, &value) == 0 { stats.powerDrawWatts = Double(value) / 1000 }
        if powerLimit(handle, &value) == 0 { stats.powerLimitWatts = Double(value) / 1000 }
        if temperature(handle, Self.temperatureGPU, &value) == 0 { stats.temperatureCelsius = Int(value) }
        if clockInfo(handle, Self.clockSM, &value) == 0 { stats.smClockMHz = Int(value) }
        if clockInfo(handle, Self.clockMemory, &value) == 0 { stats.memoryClockMHz = Int(value) }
        return stats
    }

    private static func int(_ value: UInt64) -> Int { Int(clamping: value) }
}
