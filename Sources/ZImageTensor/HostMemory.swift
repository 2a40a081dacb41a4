/// A backend whose tensors can wrap host memory in place (the CPU backend), so memory-mapped
/// weights are used without a copy.
public protocol HostMemoryBorrowing: Backend {
    /// A tensor over `address`, kept alive by `owner`; never freed by the backend.
    func borrow(address: UnsafeRawPointer, shape: Shape, dtype: DType, owner: AnyObject) -> Tensor
}
