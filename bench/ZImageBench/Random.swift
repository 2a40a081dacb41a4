/// SplitMix64: fast deterministic values for benchmark and check inputs (never zeros).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Roughly normal values (sum of uniforms), never exactly zero.
    mutating func normals(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in
            var sum: Float = 0
            for _ in 0..<4 { sum += Float(next() >> 40) / Float(1 << 24) }
            let value = (sum - 2) * 1.7320508 * scale
            return value == 0 ? 1e-3 : value
        }
    }
}

func relativeError(_ x: [Float], _ y: [Float]) -> Double {
    guard x.count == y.count else { return .infinity }
    var difference = 0.0, reference = 0.0
    for (u, v) in zip(x, y) {
        if u.isNaN || v.isNaN { return .nan }
        difference += Double(u - v) * Double(u - v)
        reference += Double(v) * Double(v)
    }
    return (difference / max(reference, .leastNormalMagnitude)).squareRoot()
}
