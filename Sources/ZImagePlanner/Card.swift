/// What zimage can run a card with.
public enum BackendSupport: String, Sendable, Codable, Equatable {
    /// NVIDIA GPUs through the CUDA backend (compute capability 8.0 and later: bf16 tensor cores).
    case cuda
    /// The CPU backend (OpenBLAS): weights memory-mapped, no device memory.
    case cpu
    /// No backend yet (AMD, Intel, Apple GPUs): nothing is predicted.
    case none
}

/// A compute device as the planner sees it: memory, tensor-core formats, bandwidth and dense
/// throughput (datasheet numbers, no sparsity; GeForce cards at their FP32-accumulate rate, which
/// is what our GEMMs use).
public struct Card: Sendable, Codable, Equatable {
    /// The name as vendors write it ("NVIDIA GeForce RTX 4090").
    public var name: String
    /// Device memory in bytes (host memory for the CPU).
    public var memoryBytes: Int
    /// Compute capability (major, minor) as "8.9"; nil for non-NVIDIA devices.
    public var computeCapability: String?
    public var backend: BackendSupport
    /// Whether the card has bf16 tensor cores (Ampere and later).
    public var bf16TensorCores: Bool
    /// Whether the card has FP8 (e4m3) tensor cores (Ada, Hopper, Blackwell).
    public var fp8TensorCores: Bool
    /// Memory bandwidth, bytes per second.
    public var memoryBandwidth: Double
    /// Host-to-device bandwidth (PCIe or the like), bytes per second: what streaming and re-uploads cost.
    public var hostBandwidth: Double
    /// Dense bf16 tensor throughput, FLOP/s (FP32 accumulate).
    public var bf16FLOPS: Double
    /// Dense FP8 tensor throughput, FLOP/s (FP32 accumulate); nil without FP8 tensor cores.
    public var fp8FLOPS: Double?
    /// Why there is no backend, for cards without one.
    public var note: String?

    /// A card from its datasheet numbers (TFLOP/s, GB/s and GiB for readability).
    public init(name: String, memoryGiB: Double, computeCapability: String?, backend: BackendSupport,
                bandwidthGBps: Double, hostGBps: Double, bf16TFLOPS: Double, fp8TFLOPS: Double?, note: String? = nil) {
        self.name = name
        self.memoryBytes = Int(memoryGiB * Double(1 << 30))
        self.computeCapability = computeCapability
        self.backend = backend
        self.bf16TensorCores = backend == .cuda
        self.fp8TensorCores = fp8TFLOPS != nil && backend == .cuda
        self.memoryBandwidth = bandwidthGBps * 1e9
        self.hostBandwidth = hostGBps * 1e9
        self.bf16FLOPS = bf16TFLOPS * 1e12
        self.fp8FLOPS = fp8TFLOPS.map { $0 * 1e12 }
        self.note = note
    }
}
