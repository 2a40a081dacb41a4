/// A backend whose tensors can wrap host memory in place (the CPU backend), so memory-mapped
/// weights are used without a copy.
public protocol HostMemoryBorrowing: Backend {
    /// A tensor over `address`, kept alive by `owner`; never freed by the backend.
    func borrow(address: UnsafeRawPointer, shape: Shape, dtype: DType, owner: AnyObject) -> Tensor
}

/// A backend that converts float32 to bfloat16 while it copies to the device (the Hub's fp32
/// transformer files into a bf16 run: half the bytes cross the bus, no float32 copy on the device).
/// The rounding is `HalfPrecision.bfloat16Bits`, what the backend's own cast would do.
public protocol ConvertingUpload: Backend {
    /// `bytes` of `from` elements as a new `to` tensor of `shape`; nil where this backend does not
    /// convert that pair (the caller uploads and casts).
    func upload(_ bytes: UnsafeRawBufferPointer, shape: Shape, converting from: DType, to: DType) throws -> Tensor?
}
