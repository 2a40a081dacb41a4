import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// `--precision fp8` holds the projections once: the dense weights are dropped after quantising,
/// the images are those of an FP8 transformer that kept them, and a LoRA merges into the dense
/// weights read again from the file (the same images as a merge into kept weights).
@Suite(.serialized) struct Float8WeightsTests {
    static func pipelines() throws -> (lean: ZImagePipeline, kept: ZImagePipeline) {
        let lean = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .float8)
        let weights = try ModelDirectory(path: Fixtures.tinyModel).weights(of: "transformer")
        let transformer = try ZImageTransformer(configuration: lean.baseTransformer.configuration, weights: weights,
                                                backend: lean.backend, dtype: .bfloat16, linearFormat: .float8)
        let kept = ZImagePipeline(backend: lean.backend, precision: .float8, tokenizer: lean.tokenizer,
                                  textEncoder: try #require(lean.textEncoder), transformer: transformer, decoder: lean.decoder,
                                  shift: lean.shift, modelName: lean.modelName)
        return (lean, kept)
    }

    static func image(_ pipeline: ZImagePipeline) throws -> [UInt8] {
        var p = GenerationParameters(prompt: "a red fox")
        (p.width, p.height, p.steps, p.seed) = (64, 64, 2, 7)
        return try #require(pipeline.generate(p).first).image.pixels
    }

    @Test func theDenseProjectionWeightsAreDroppedAndTheImageIsUnchanged() throws {
        let (lean, kept) = try Self.pipelines()
        let keys = ZImageTransformer.float8Keys(lean.baseTransformer.configuration)
        #expect(!lean.baseTransformer.hasDenseWeights && kept.baseTransformer.hasDenseWeights)
        #expect(keys.allSatisfy { lean.baseTransformer.parameters.tensors[$0] == nil })
        #expect(keys.allSatisfy { kept.baseTransformer.parameters.tensors[$0] != nil })
        // What stays dense (embedders, caption refiner, norms) is still there.
        #expect(lean.baseTransformer.parameters.tensors["context_refiner.0.attention.to_q.weight"] != nil)
        #expect(try Self.image(lean) == Self.image(kept))
    }

    @Test func aLoRAMergesIntoWeightsReadAgain() throws {
        let (lean, kept) = try Self.pipelines()
        let lora = try WeightedLoRA(LoRAFile(path: Fixtures.path("lora/kohya.safetensors")), strength: 0.8)
        #expect(throws: LoRAError.self) { try lean.baseTransformer.merging([lora]) }
        let before = try Self.image(lean)
        try lean.useLoRAs([lora])
        try kept.useLoRAs([lora])
        let merged = try Self.image(lean)
        #expect(merged != before, "the LoRA changed the image")
        #expect(merged == (try Self.image(kept)))
        #expect(!lean.transformer.hasDenseWeights, "the merged FP8 transformer holds its projections once too")
        try lean.useLoRAs([])
        #expect(try Self.image(lean) == before)
    }
}
