import ZImageTensor

/// Converts `count` elements of `dtype` at `source` to float32.
func convertToFloat(_ source: UnsafeRawPointer, dtype: DType, _ destination: UnsafeMutablePointer<Float>,
                    count: Int, threads: Int) throws {
    switch dtype {
    case .float32:
        destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .bfloat16:
        let bits = source.assumingMemoryBound(to: UInt16.self)
        parallelFor(count, threads: threads, minimumChunk: 1 << 16) { range in
            for i in range { destination[i] = Float(bitPattern: UInt32(bits[i]) << 16) }
        }
    case .float16:
        let halves = source.assumingMemoryBound(to: Float16.self)
        parallelFor(count, threads: threads, minimumChunk: 1 << 16) { range in
            for i in range { destination[i] = Float(halves[i]) }
        }
    default:
        throw TensorError.unsupportedDType(op: "to float32", dtype: dtype)
    }
}

/// Rounds `count` float32 values at `source` into `dtype` at `destination`.
func convertFromFloat(_ source: UnsafePointer<Float>, _ destination: UnsafeMutableRawPointer, dtype: DType,
                      count: Int, threads: Int) throws {
    switch dtype {
    case .float32:
        let out = destination.assumingMemoryBound(to: Float.self)
        if UnsafeRawPointer(out) != UnsafeRawPointer(source) { out.update(from: source, count: count) }
    case .bfloat16:
        let out = destination.assumingMemoryBound(to: UInt16.self)
        parallelFor(count, threads: threads, minimumChunk: 1 << 16) { range in
            for i in range { out[i] = HalfPrecision.bfloat16Bits(source[i]) }
        }
    case .float16:
        let out = destination.assumingMemoryBound(to: Float16.self)
        parallelFor(count, threads: threads, minimumChunk: 1 << 16) { range in
            for i in range { out[i] = Float16(source[i]) }
        }
    default:
        throw TensorError.unsupportedDType(op: "from float32", dtype: dtype)
    }
}

/// Rounds a float32 value the way storing it as `dtype` would.
@inline(__always)
func roundedAs(_ value: Float, _ dtype: DType) -> Float {
    switch dtype {
    case .bfloat16: HalfPrecision.roundedToBFloat16(value)
    case .float16: Float(Float16(value))
    default: value
    }
}

/// A float32 view of a tensor: its own memory when it is float32, otherwise a converted copy.
final class FloatInput {
    let pointer: UnsafePointer<Float>
    private let owned: UnsafeMutablePointer<Float>?
    private let keepAlive: Tensor

    init(_ tensor: Tensor, threads: Int, op: String) throws {
        keepAlive = tensor
        guard tensor.dtype.isComputeType else { throw TensorError.unsupportedDType(op: op, dtype: tensor.dtype) }
        let raw = UnsafeRawPointer(bitPattern: tensor.address)
        if tensor.dtype == .float32, let raw {
            pointer = raw.assumingMemoryBound(to: Float.self)
            owned = nil
        } else {
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(tensor.count, 1))
            if let raw, tensor.count > 0 {
                try convertToFloat(raw, dtype: tensor.dtype, buffer, count: tensor.count, threads: threads)
            }
            pointer = UnsafePointer(buffer)
            owned = buffer
        }
    }

    deinit { owned?.deallocate() }
}

/// A float32 destination for an op's result: the output tensor itself when it is float32,
/// otherwise a scratch buffer rounded into the tensor by `finish()`.
final class FloatOutput {
    let tensor: Tensor
    let pointer: UnsafeMutablePointer<Float>
    private let scratch: Bool
    private let threads: Int

    init(_ tensor: Tensor, threads: Int) {
        self.tensor = tensor
        self.threads = threads
        if tensor.dtype == .float32, let raw = UnsafeMutableRawPointer(bitPattern: tensor.address) {
            pointer = raw.assumingMemoryBound(to: Float.self)
            scratch = false
        } else {
            pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(tensor.count, 1))
            scratch = true
        }
    }

    /// Writes the float32 results into the tensor in its dtype and returns it.
    func finish() throws -> Tensor {
        if scratch, tensor.count > 0, let raw = UnsafeMutableRawPointer(bitPattern: tensor.address) {
            try convertFromFloat(pointer, raw, dtype: tensor.dtype, count: tensor.count, threads: threads)
        }
        return tensor
    }

    deinit { if scratch { pointer.deallocate() } }
}

extension Tensor {
    /// Host pointer of a CPU tensor's first element.
    var hostPointer: UnsafeMutableRawPointer {
        // CPU storage always has a non-null address: allocations are at least one byte.
        guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else {
            preconditionFailure("CPU tensor with a null address")
        }
        return pointer
    }
}
