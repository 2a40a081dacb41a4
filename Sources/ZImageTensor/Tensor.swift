/// Device memory owned by one or more tensors (a tensor and its reshaped views share it).
///
/// Memory from a backend's pool goes back to the pool when the last tensor using it is gone;
/// on a GPU that release is stream-ordered, so nothing waits. Borrowed memory (a memory-mapped
/// weight file) is kept alive through `owner` and never freed here.
public final class TensorStorage {
    /// The backend whose memory this is.
    public let backend: any Backend
    /// Raw address: a host pointer on the CPU, a `CUdeviceptr` on CUDA.
    public let address: UInt
    /// Size of the block in bytes.
    public let byteCount: Int
    private let owner: AnyObject?

    /// Storage from `backend`'s allocator; released to it on `deinit`.
    public init(backend: any Backend, address: UInt, byteCount: Int) {
        self.backend = backend
        self.address = address
        self.byteCount = byteCount
        self.owner = nil
    }

    /// Storage borrowed from `owner` (for example a memory-mapped file), never released here.
    public init(backend: any Backend, borrowing address: UInt, byteCount: Int, owner: AnyObject) {
        self.backend = backend
        self.address = address
        self.byteCount = byteCount
        self.owner = owner
    }

    /// Whether the bytes are borrowed (a memory-mapped file, perhaps read-only) rather than the backend's.
    public var isBorrowed: Bool { owner != nil }

    deinit {
        if owner == nil { backend.release(address: address, byteCount: byteCount) }
    }
}

/// An n-dimensional, row-major, contiguous array on one device.
///
/// Tensors stay on their device between ops; `Backend` ops queue work (asynchronously on a GPU)
/// and return new tensors. Only `toFloats()`, `toBytes()` and `to(_:)` bring data back to the host.
/// A tensor is a value holding a reference to its storage; it is deliberately not `Sendable`.
public struct Tensor {
    /// The memory this tensor reads.
    public let storage: TensorStorage
    /// Extents, outermost first.
    public let shape: Shape
    /// Element type.
    public let dtype: DType
    /// Offset of the first element inside `storage`, in bytes.
    public let byteOffset: Int

    /// Wraps `storage`; the caller guarantees the bytes fit.
    public init(storage: TensorStorage, shape: Shape, dtype: DType, byteOffset: Int = 0) {
        precondition(byteOffset + shape.count * dtype.byteSize <= storage.byteCount, "tensor exceeds its storage")
        self.storage = storage
        self.shape = shape
        self.dtype = dtype
        self.byteOffset = byteOffset
    }

    /// The backend that owns the memory and runs ops on this tensor.
    public var backend: any Backend { storage.backend }
    /// The device the tensor lives on.
    public var device: Device { storage.backend.device }
    /// Raw address of the first element.
    public var address: UInt { storage.address + UInt(byteOffset) }
    /// Number of elements.
    public var count: Int { shape.count }
    /// Size of the elements in bytes.
    public var byteCount: Int { shape.count * dtype.byteSize }

    /// The same elements under another shape (no copy). One extent may be `-1`.
    public func reshaped(_ dims: [Int]) throws -> Tensor {
        var resolved = dims
        if let hole = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != hole }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(op: "reshape", detail: "\(shape) into \(Shape(dims))")
            }
            resolved[hole] = count / known
        }
        guard Shape.checkedCount(resolved) == count else {
            throw TensorError.shapeMismatch(op: "reshape", detail: "\(shape) into \(Shape(dims))")
        }
        return Tensor(storage: storage, shape: Shape(resolved), dtype: dtype, byteOffset: byteOffset)
    }

    /// Rows `range` of the outermost axis, sharing memory (no copy).
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard shape.rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.invalidArgument(op: "rows", detail: "range \(range) outside \(shape)")
        }
        var dims = shape.dims
        dims[0] = range.count
        let rowBytes = shape.dims.dropFirst().reduce(1, *) * dtype.byteSize
        return Tensor(storage: storage, shape: Shape(dims), dtype: dtype,
                      byteOffset: byteOffset + range.lowerBound * rowBytes)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(dtype), \(device))" }
}
