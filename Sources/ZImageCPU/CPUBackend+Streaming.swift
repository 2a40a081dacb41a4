import Foundation
import ZImageTensor

// The CPU backend streams weights as a GPU would, with plain copies (its ops run as they are
// queued, so there is nothing to overlap): streamed layers compute the same bytes as resident ones,
// which is what the tests compare without a GPU.
extension CPUBackend: WeightStreaming {
    public func makeHostWeightBuffer(byteCount: Int) throws -> HostWeightBuffer {
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        return HostWeightBuffer(base: base, byteCount: byteCount, isPinned: false) { $0.deallocate() }
    }

    public func makeCopyFence() throws -> CopyFence { CopyFence(handle: nil) { _ in } }

    public func queueCopies(_ copies: [(source: UnsafeRawPointer, tensor: Tensor)], signalling fence: CopyFence) throws {
        for (source, tensor) in copies where tensor.byteCount > 0 {
            guard tensor.backend === self, let target = UnsafeMutableRawPointer(bitPattern: tensor.address) else {
                throw TensorError.invalidArgument(op: "queueCopies", detail: "\(tensor) is not on \(device)")
            }
            target.copyMemory(from: source, byteCount: tensor.byteCount)
        }
    }

    public func waitForCopies(_ fence: CopyFence) throws {}
}
