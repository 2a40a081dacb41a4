import Foundation
import Testing
import ZImageCUDA
import ZImageTensor

/// The copy stream's ordering on a GPU (`CUDABackend+Streaming`): copies into a slot wait for the
/// ops queued before them that read it, and ops queued after `waitForCopies` see the new bytes.
/// Large slots make a wrong order visible (the copy would land while the read still runs).
@Suite(.serialized, .enabled(if: GPUForTests.available, "no CUDA GPU here: the streaming GPU tests are skipped"))
struct WeightStreamingGPUTests {
    @Test func copiesWaitForEarlierReadsAndLaterOpsWaitForCopies() throws {
        let gpu = try #require(GPUForTests.backend)
        let count = 32 << 20   // 128 MiB of float32 per slot
        let slot = try gpu.allocate(shape: [count], dtype: .float32)
        var images: [HostWeightBuffer] = []
        for value in [Float(1), 2, 3, 4] {
            let buffer = try gpu.makeHostWeightBuffer(byteCount: count * 4)
            buffer.base.initializeMemory(as: Float.self, repeating: value, count: count)
            #expect(buffer.isPinned)
            images.append(buffer)
        }
        let fence = try gpu.makeCopyFence()
        var reads: [Tensor] = []
        for image in images {
            try gpu.queueCopies([(source: UnsafeRawPointer(image.base), tensor: slot)], signalling: fence)
            try gpu.waitForCopies(fence)
            // Several passes over the slot, so the read is long enough for a racing copy to show.
            var sum = try slot.affine(scale: 1, shift: 0)
            for _ in 0..<3 { sum = try (sum + slot).affine(scale: 0.5, shift: 0) }
            reads.append(sum)
        }
        try gpu.synchronize()
        // Each read saw its own image: v, then three times (s + v) / 2 → v.
        for (index, read) in reads.enumerated() {
            let values = try read.toFloats()
            let expected = Float(index + 1)
            #expect(values.first == expected && values.last == expected && values[count / 2] == expected,
                    "read \(index): \(values.first ?? .nan) … \(values.last ?? .nan), expected \(expected)")
        }
    }
}
