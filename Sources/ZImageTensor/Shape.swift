/// The extents of a row-major tensor, outermost first.
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Extent of each axis.
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    /// Number of axes.
    public var rank: Int { dims.count }
    /// Number of elements (1 for a scalar).
    public var count: Int { dims.reduce(1, *) }
    /// Extent of `axis`; negative axes count from the end.
    public subscript(axis: Int) -> Int { dims[axis < 0 ? axis + dims.count : axis] }

    /// Row-major element strides.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: dims.count)
        var running = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            result[axis] = running
            running *= dims[axis]
        }
        return result
    }

    /// Resolves a possibly negative axis index, or `nil` when out of range.
    public func normalizedAxis(_ axis: Int) -> Int? {
        let resolved = axis < 0 ? axis + rank : axis
        return (0..<rank).contains(resolved) ? resolved : nil
    }

    /// Element count, or `nil` when a dimension is negative or the product overflows `Int`.
    public static func checkedCount(_ dims: [Int]) -> Int? {
        var total = 1
        for dim in dims {
            guard dim >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// NumPy-style broadcast of two shapes, or `nil` when they are incompatible.
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = max(a.rank, b.rank)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.rank ? 1 : a.dims[i - (rank - a.rank)]
            let db = i < rank - b.rank ? 1 : b.dims[i - (rank - b.rank)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return Shape(out)
    }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
}
