import Foundation

/// Host memory that weights are copied to the device from while the device computes: pinned
/// (page-locked) on a GPU, so the copies run by DMA on their own stream; ordinary memory on the CPU.
public final class HostWeightBuffer {
    /// The first byte.
    public let base: UnsafeMutableRawPointer
    /// Its size in bytes.
    public let byteCount: Int
    /// Whether the memory is page-locked (a GPU copies from it without a staging copy).
    public let isPinned: Bool
    private let free: (UnsafeMutableRawPointer) -> Void

    /// Wraps `base`; `free` gives it back when the buffer goes.
    public init(base: UnsafeMutableRawPointer, byteCount: Int, isPinned: Bool,
                free: @escaping (UnsafeMutableRawPointer) -> Void) {
        self.base = base
        self.byteCount = byteCount
        self.isPinned = isPinned
        self.free = free
    }

    deinit { free(base) }
}

/// A mark in a backend's copy stream: the copies queued before it are done once it has passed.
/// Made by `WeightStreaming.makeCopyFence`, re-armed by each `queueCopies` that signals it.
public final class CopyFence {
    /// The backend's handle (a CUDA event), nil where copies are synchronous.
    public let handle: OpaquePointer?
    private let destroy: (OpaquePointer?) -> Void

    public init(handle: OpaquePointer?, destroy: @escaping (OpaquePointer?) -> Void) {
        self.handle = handle
        self.destroy = destroy
    }

    deinit { destroy(handle) }
}

/// A backend that can keep weights in host memory and copy them into device tensors while it
/// computes (block streaming): copies queue on a stream of their own, ordered after the work
/// already queued (so a tensor the earlier work reads is not overwritten early), and later work
/// waits for them only where it uses them.
public protocol WeightStreaming: Backend {
    /// `byteCount` bytes of host memory to stream from (pinned where the backend can).
    func makeHostWeightBuffer(byteCount: Int) throws -> HostWeightBuffer
    /// A fence for `queueCopies` to signal.
    func makeCopyFence() throws -> CopyFence
    /// Copies `byteCount(tensor)` bytes from each `source` into its tensor after every op queued
    /// so far, on the copy stream, then signals `fence`. `source` must stay valid until then.
    func queueCopies(_ copies: [(source: UnsafeRawPointer, tensor: Tensor)], signalling fence: CopyFence) throws
    /// Ops queued from now on run after the copies `fence` marks.
    func waitForCopies(_ fence: CopyFence) throws
}
