/// SplitMix64: fast deterministic values for test, check and benchmark inputs.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Roughly normal values (a scaled sum of four uniforms), never exactly zero (zeros hide
    /// unwritten outputs and wrong indexing).
    public mutating func normals(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in
            var sum: Float = 0
            for _ in 0..<4 { sum += Float(next() >> 40) / Float(1 << 24) }
            let value = (sum - 2) * 1.7320508 * scale
            return value == 0 ? 1e-3 : value
        }
    }
}
