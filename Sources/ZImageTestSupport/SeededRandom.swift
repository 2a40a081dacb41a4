import ZImageTensor

extension SplitMix64 {
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
