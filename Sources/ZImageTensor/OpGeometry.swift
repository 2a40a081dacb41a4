// Shape checks and derived sizes shared by every backend, so that all of them accept and refuse
// the same operands with the same errors.

/// Sizes of a (batched) matrix product `C[M, N] = op(A)[M, K] · op(B)[K, N]`.
public struct MatmulGeometry: Equatable, Sendable {
    public var batch: Int
    public var m: Int, n: Int, k: Int
    /// Whether `b` has its own matrix per batch item (otherwise it is shared).
    public var batchedB: Bool
    /// Shape of the result.
    public var outputShape: Shape

    public init(a: Shape, b: Shape, transposeA: Bool, transposeB: Bool, bias: Shape?) throws {
        let op = "matmul"
        guard a.rank >= 2, b.rank >= 2 else {
            throw TensorError.shapeMismatch(op: op, detail: "operands need rank >= 2, got \(a) and \(b)")
        }
        let m = transposeA ? a[-1] : a[-2]
        let k = transposeA ? a[-2] : a[-1]
        let kb = transposeB ? b[-1] : b[-2]
        let n = transposeB ? b[-2] : b[-1]
        guard k == kb else { throw TensorError.shapeMismatch(op: op, detail: "inner sizes differ: \(a) · \(b)") }
        let batchDims = Array(a.dims.dropLast(2))
        let bBatch = Array(b.dims.dropLast(2))
        guard bBatch.isEmpty || bBatch == batchDims else {
            throw TensorError.shapeMismatch(op: op, detail: "batch axes differ: \(a) · \(b)")
        }
        if let bias, bias != Shape([n]) {
            throw TensorError.shapeMismatch(op: op, detail: "bias \(bias) should be [\(n)]")
        }
        self.batch = batchDims.reduce(1, *)
        self.m = m
        self.n = n
        self.k = k
        self.batchedB = !bBatch.isEmpty
        self.outputShape = Shape(batchDims + [m, n])
    }
}

/// Per-axis strides of two operands broadcast to a common output shape (0 on broadcast axes).
public struct BroadcastGeometry: Sendable {
    public var outputShape: Shape
    public var aStrides: [Int]
    public var bStrides: [Int]

    public init(_ a: Shape, _ b: Shape, op: String) throws {
        guard let out = Shape.broadcast(a, b) else {
            throw TensorError.shapeMismatch(op: op, detail: "cannot broadcast \(a) with \(b)")
        }
        outputShape = out
        aStrides = Self.strides(of: a, in: out)
        bStrides = Self.strides(of: b, in: out)
    }

    private static func strides(of shape: Shape, in out: Shape) -> [Int] {
        let own = shape.strides
        let lead = out.rank - shape.rank
        return (0..<out.rank).map { axis in
            axis < lead || shape.dims[axis - lead] == 1 ? 0 : own[axis - lead]
        }
    }
}

/// Sizes of scaled-dot-product attention over tokens-major `[B, L, H, D]` tensors.
public struct AttentionGeometry: Equatable, Sendable {
    public var batch: Int, queryLength: Int, keyLength: Int
    public var queryHeads: Int, keyHeads: Int, headDim: Int, valueDim: Int

    public init(query: Shape, key: Shape, value: Shape, keyMask: Shape?) throws {
        let op = "attention"
        guard query.rank == 4, key.rank == 4, value.rank == 4 else {
            throw TensorError.shapeMismatch(op: op, detail: "expected [B, L, H, D], got \(query), \(key), \(value)")
        }
        batch = query[0]
        queryLength = query[1]
        queryHeads = query[2]
        headDim = query[3]
        keyLength = key[1]
        keyHeads = key[2]
        valueDim = value[3]
        guard key[0] == batch, value[0] == batch, key[3] == headDim, value[1] == keyLength, value[2] == keyHeads
        else { throw TensorError.shapeMismatch(op: op, detail: "q \(query), k \(key), v \(value)") }
        guard keyHeads > 0, queryHeads % keyHeads == 0 else {
            throw TensorError.shapeMismatch(op: op, detail: "\(queryHeads) query heads over \(keyHeads) key heads")
        }
        if let keyMask, keyMask != Shape([batch, keyLength]) {
            throw TensorError.shapeMismatch(op: op, detail: "key mask \(keyMask) should be [\(batch), \(keyLength)]")
        }
    }

    public var outputShape: Shape { [batch, queryLength, queryHeads, valueDim] }
}

/// Sizes of a 2-D convolution.
public struct Conv2DGeometry: Equatable, Sendable {
    public var batch: Int, inChannels: Int, height: Int, width: Int
    public var outChannels: Int, kernelHeight: Int, kernelWidth: Int
    public var stride: Int, padding: Int
    public var outHeight: Int, outWidth: Int

    public init(input: Shape, weight: Shape, bias: Shape?, stride: Int, padding: Int) throws {
        let op = "conv2d"
        guard input.rank == 4, weight.rank == 4, weight[1] == input[1] else {
            throw TensorError.shapeMismatch(op: op, detail: "input \(input), weight \(weight)")
        }
        guard stride >= 1, padding >= 0 else {
            throw TensorError.invalidArgument(op: op, detail: "stride \(stride), padding \(padding)")
        }
        batch = input[0]
        inChannels = input[1]
        height = input[2]
        width = input[3]
        outChannels = weight[0]
        kernelHeight = weight[2]
        kernelWidth = weight[3]
        self.stride = stride
        self.padding = padding
        outHeight = (height + 2 * padding - kernelHeight) / stride + 1
        outWidth = (width + 2 * padding - kernelWidth) / stride + 1
        guard outHeight > 0, outWidth > 0 else {
            throw TensorError.shapeMismatch(op: op, detail: "kernel larger than padded input \(input)")
        }
        if let bias, bias != Shape([outChannels]) {
            throw TensorError.shapeMismatch(op: op, detail: "bias \(bias) should be [\(outChannels)]")
        }
    }

    public var outputShape: Shape { [batch, outChannels, outHeight, outWidth] }
}

/// Checks shared by the ops that work along the last axis (norms, softmax).
public enum LastAxis {
    /// `(rows, width)` of `x` seen as a matrix over its last axis; checks an optional `[width]` parameter.
    public static func geometry(_ x: Shape, op: String, parameters: [Shape?] = []) throws -> (rows: Int, width: Int) {
        guard x.rank >= 1, x[-1] > 0 else { throw TensorError.shapeMismatch(op: op, detail: "input \(x)") }
        for parameter in parameters.compactMap({ $0 }) where parameter != Shape([x[-1]]) {
            throw TensorError.shapeMismatch(op: op, detail: "parameter \(parameter) should be [\(x[-1])]")
        }
        return (x.count / x[-1], x[-1])
    }
}

/// Checks for the data-movement ops.
public enum Movement {
    /// Output shape of concatenating `shapes` along `axis`.
    public static func concatShape(_ shapes: [Shape], axis: Int) throws -> (Shape, axis: Int) {
        guard let first = shapes.first, let resolved = first.normalizedAxis(axis) else {
            throw TensorError.invalidArgument(op: "concat", detail: "no inputs or axis \(axis) out of range")
        }
        var dims = first.dims
        dims[resolved] = 0
        for shape in shapes {
            var other = shape.dims
            guard other.count == first.rank else {
                throw TensorError.shapeMismatch(op: "concat", detail: "ranks differ: \(first) and \(shape)")
            }
            dims[resolved] += other[resolved]
            other[resolved] = 0
            var base = first.dims
            base[resolved] = 0
            guard other == base else {
                throw TensorError.shapeMismatch(op: "concat", detail: "\(first) and \(shape) along axis \(resolved)")
            }
        }
        return (Shape(dims), resolved)
    }

    /// Validates a permutation of `rank` axes.
    public static func checkPermutation(_ dims: [Int], rank: Int) throws {
        guard dims.count == rank, Set(dims) == Set(0..<rank) else {
            throw TensorError.invalidArgument(op: "permute", detail: "\(dims) is not a permutation of \(rank) axes")
        }
    }

    /// Validates a slice and returns the resolved axis.
    public static func checkSlice(_ shape: Shape, axis: Int, range: Range<Int>) throws -> Int {
        guard let resolved = shape.normalizedAxis(axis), range.lowerBound >= 0, range.upperBound <= shape[resolved]
        else { throw TensorError.invalidArgument(op: "slice", detail: "\(range) along axis \(axis) of \(shape)") }
        return resolved
    }
}

/// Checks shared by the image and lookup ops, so every backend refuses the same inputs alike.
public enum LayoutChecks {
    /// `[N, C, 2H, 2W]` for a `[N, C, H, W]` input.
    public static func upsampledShape(_ x: Shape) throws -> Shape {
        guard x.rank == 4 else {
            throw TensorError.shapeMismatch(op: "upsampleNearest2x", detail: "expected [N, C, H, W], got \(x)")
        }
        return [x[0], x[1], 2 * x[2], 2 * x[3]]
    }

    /// Validates ids against a `[V, E]` table.
    public static func checkEmbedding(table: Shape, ids: [Int]) throws {
        guard table.rank == 2 else {
            throw TensorError.shapeMismatch(op: "embedding", detail: "table \(table) should be [V, E]")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= table[0] }) {
            throw TensorError.invalidArgument(op: "embedding", detail: "id \(bad) outside 0..<\(table[0])")
        }
    }

    /// Whether RoPE tables are per batch item (`[B, L, D/2]`) rather than shared (`[L, D/2]`).
    public static func ropeTablesPerItem(x: Shape, cos: Shape, sin: Shape) throws -> Bool {
        guard x.rank == 4, x[3] % 2 == 0 else {
            throw TensorError.shapeMismatch(op: "rope", detail: "x \(x) should be [B, L, H, D] with even D")
        }
        guard sin == cos else {
            throw TensorError.shapeMismatch(op: "rope", detail: "sin \(sin) differs from cos \(cos)")
        }
        switch cos {
        case [x[1], x[3] / 2]: return false
        case [x[0], x[1], x[3] / 2]: return true
        default: throw TensorError.shapeMismatch(op: "rope", detail: "cos \(cos) should be [\(x[1]), \(x[3] / 2)]")
        }
    }

    /// Validates GroupNorm operands; returns the spatial size per channel.
    public static func groupNormSpatial(_ x: Shape, groups: Int, weight: Shape?, bias: Shape?) throws -> Int {
        guard x.rank >= 2, groups > 0, x[1] % groups == 0 else {
            throw TensorError.shapeMismatch(op: "groupNorm", detail: "\(x) in \(groups) groups")
        }
        for parameter in [weight, bias].compactMap({ $0 }) where parameter != Shape([x[1]]) {
            throw TensorError.shapeMismatch(op: "groupNorm", detail: "parameter \(parameter) should be [\(x[1])]")
        }
        return x.dims.dropFirst(2).reduce(1, *)
    }
}
