import Testing
import ZImageCPU
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport

/// `encodePrompt` keeps the last few prompts' caption features: a repeated prompt skips the text
/// encoder (the same tensor comes back), others are encoded, the oldest is dropped.
@Suite struct PromptCacheTests {
    @Test func aRepeatedPromptReusesItsFeatures() throws {
        let pipeline = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .float32)
        pipeline.promptCacheSize = 2
        let first = try pipeline.encodePrompt("a red fox")
        let again = try pipeline.encodePrompt("a red fox")
        #expect(again.features.storage === first.features.storage, "a repeated prompt is not encoded again")
        let other = try pipeline.encodePrompt("a blue bird")
        #expect(other.features.storage !== first.features.storage)
        #expect(try pipeline.encodePrompt("a red fox").features.storage === first.features.storage)
        // Two more prompts push "a red fox" out (size 2): it is encoded again, to the same values.
        _ = try pipeline.encodePrompt("one")
        _ = try pipeline.encodePrompt("two")
        let fresh = try pipeline.encodePrompt("a red fox")
        #expect(fresh.features.storage !== first.features.storage)
        #expect(try fresh.features.toFloats() == first.features.toFloats())
        pipeline.promptCacheSize = 0
        let uncached = try pipeline.encodePrompt("a red fox")
        #expect(uncached.features.storage !== fresh.features.storage, "size 0: no cache")
    }

    @Test func sequentialComponentsReleaseTheTextEncoderAfterEachNewPrompt() throws {
        let resident = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .float32)
        let sequential = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .float32)
        sequential.releasesTextEncoder = true
        #expect(sequential.textEncoder != nil, "loaded at start")
        let first = try sequential.encodePrompt("a red fox")
        #expect(sequential.textEncoder == nil, "released after encoding")
        #expect(try first.features.toFloats() == resident.encodePrompt("a red fox").features.toFloats())
        // A repeated prompt needs no encoder; a new one loads it again, to the resident pipeline's features.
        #expect(try sequential.encodePrompt("a red fox").features.storage === first.features.storage)
        let other = try sequential.encodePrompt("a blue bird")
        #expect(sequential.textEncoder == nil)
        #expect(try other.features.toFloats() == resident.encodePrompt("a blue bird").features.toFloats())
        #expect(resident.textEncoder != nil)
    }
}
