import Foundation
import ZImageTensor

/// The DiT's 3-axis rotary embedding (diffusers' `RopeEmbedder`): per axis a with width d_a, ω_k = 1 / θ^(2k/d_a)
/// in float64, angle = float32(position · ω_k), cos/sin in float32; a token's 64 pair factors are
/// axis 0's, then axis 1's, then axis 2's.
struct ZImageRoPE {
    let theta: Double
    let axesDims: [Int]
    let axesLens: [Int]
    private let frequencies: [[Double]]

    init(theta: Double, axesDims: [Int], axesLens: [Int]) {
        self.theta = theta
        self.axesDims = axesDims
        self.axesLens = axesLens
        frequencies = axesDims.map { d in (0..<(d / 2)).map { k in 1 / Foundation.pow(theta, Double(2 * k) / Double(d)) } }
    }

    /// Number of rotated pairs per head (head_dim / 2).
    var pairs: Int { axesDims.reduce(0, +) / 2 }

    /// cos and sin tables `[positions.count, pairs]` for position triples.
    func tables(_ positions: [(Int, Int, Int)], backend: any Backend) throws -> (cos: Tensor, sin: Tensor) {
        for (p0, p1, p2) in positions {
            let values = [p0, p1, p2]
            for axis in 0..<3 where values[axis] < 0 || values[axis] >= axesLens[axis] {
                throw TensorError.invalidArgument(
                    op: "rope", detail: "position \(values[axis]) on axis \(axis) is outside 0..<\(axesLens[axis]) "
                        + "(image or caption too large for this model)")
            }
        }
        var cos = [Float](), sin = [Float]()
        cos.reserveCapacity(positions.count * pairs)
        sin.reserveCapacity(positions.count * pairs)
        for (p0, p1, p2) in positions {
            for (axis, position) in [p0, p1, p2].enumerated() {
                for omega in frequencies[axis] {
                    let angle = Float(Double(position) * omega)
                    cos.append(Foundation.cos(angle))
                    sin.append(Foundation.sin(angle))
                }
            }
        }
        return (try backend.tensor(cos, shape: [positions.count, pairs]),
                try backend.tensor(sin, shape: [positions.count, pairs]))
    }
}
