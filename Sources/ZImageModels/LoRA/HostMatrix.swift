/// A small float32 tensor on the host: LoRA factors are read, renamed, scaled and split here
/// before the merge uploads their product.
public struct HostMatrix: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    /// Rows × the product of the remaining axes (a 4-D `[out, in, 1, 1]` kernel reads as `[out, in]`).
    var rows: Int { shape.first ?? 1 }
    var columns: Int { shape.dropFirst().reduce(1, *) }

    /// Every value times `factor`, in float32 (what `tensor * python_float` does in PyTorch).
    public func scaled(_ factor: Float) -> HostMatrix {
        factor == 1 ? self : HostMatrix(shape: shape, values: values.map { $0 * factor })
    }

    /// Rows `range` (torch `chunk` along dim 0).
    func rowSlice(_ range: Range<Int>) -> HostMatrix {
        let width = columns
        var shape = self.shape
        shape[0] = range.count
        return HostMatrix(shape: shape, values: Array(values[(range.lowerBound * width)..<(range.upperBound * width)]))
    }

    /// `self · other` for `[m, k] · [k, n]`, accumulated in float32 in order (small factors only).
    func multiplied(by other: HostMatrix) -> HostMatrix {
        let (m, k, n) = (rows, columns, other.columns)
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k {
                let a = values[i * k + p]
                if a == 0 { continue }
                for j in 0..<n { out[i * n + j] += a * other.values[p * n + j] }
            }
        }
        return HostMatrix(shape: [m, n], values: out)
    }

    /// The Kronecker product `self ⊗ other` (`torch.kron` of two matrices).
    func kronecker(_ other: HostMatrix) -> HostMatrix {
        let (a, b, c, d) = (rows, columns, other.rows, other.columns)
        var out = [Float](repeating: 0, count: a * b * c * d)
        let width = b * d
        for i in 0..<a {
            for j in 0..<b {
                let x = values[i * b + j]
                for k in 0..<c {
                    for l in 0..<d { out[(i * c + k) * width + j * d + l] = x * other.values[k * d + l] }
                }
            }
        }
        return HostMatrix(shape: [a * c, b * d], values: out)
    }
}
