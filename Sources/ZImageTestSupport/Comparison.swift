import ZImageTensor

/// ‖x − y‖ / ‖y‖ in float64 (every parity test's measure), `y` the reference. Different lengths, or NaN
/// where the other side has a number, give infinity (a poisoned, unwritten output fails); a NaN
/// on both sides at the same place is equal. With an all-zero reference, the absolute norm.
public func relativeError(_ x: [Float], _ y: [Float]) -> Double {
    guard x.count == y.count else { return .infinity }
    var difference = 0.0, reference = 0.0
    for (u, v) in zip(x, y) {
        if u.isNaN != v.isNaN { return .infinity }
        if u.isNaN { continue }
        difference += Double(u - v) * Double(u - v)
        reference += Double(v) * Double(v)
    }
    return reference == 0 ? difference.squareRoot() : (difference / reference).squareRoot()
}

/// `relativeError` of two tensors' values; infinity when their shapes differ.
public func relativeError(_ a: Tensor, _ b: Tensor) throws -> Double {
    guard a.shape == b.shape else { return .infinity }
    return relativeError(try a.toFloats(), try b.toFloats())
}
