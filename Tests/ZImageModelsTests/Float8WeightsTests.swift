import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// `--precision fp8` and `int8` hold the projections once: the dense weights are dropped after
/// quantising, the images are those of a quantised transformer that kept them, and a LoRA merges
/// into the dense weights read again from the file (the same images as a merge into kept weights).
@Suite(.serialized) struct Float8WeightsTests {
    static func pipelines(_ precision: Precision) throws -> (lean: ZImagePipeline, kept: ZImagePipeline) {
        let lean = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: precision)
        let weights = try ModelDirectory(path: Fixtures.tinyModel).weights(of: "transformer")
        let transformer = try ZImageTransformer(configuration: lean.baseTransformer.configuration, weights: weights,
                                                backend: lean.backend, dtype: .bfloat16,
                                                linearFormat: precision.transformerLinearFormat)
        let kept = ZImagePipeline(backend: lean.backend, precision: precision, tokenizer: lean.tokenizer,
                                  textEncoder: try #require(lean.textEncoder), transformer: transformer, decoder: lean.decoder,
                                  shift: lean.shift, modelName: lean.modelName)
        return (lean, kept)
    }

    static func image(_ pipeline: ZImagePipeline) throws -> [UInt8] {
        var p = GenerationParameters(prompt: "a red fox")
        (p.width, p.height, p.steps, p.seed) = (64, 64, 2, 7)
        return try #require(pipeline.generate(p).first).image.pixels
    }

    @Test(arguments: [Precision.float8, .int8])
    func theDenseProjectionWeightsAreDroppedAndTheImageIsUnchanged(_ precision: Precision) throws {
        let (lean, kept) = try Self.pipelines(precision)
        #expect(lean.baseTransformer.linearFormat == precision.linearFormat)
        #expect(lean.textEncoder?.linearFormat == precision.linearFormat)
        let keys = ZImageTransformer.float8Keys(lean.baseTransformer.configuration)
        #expect(!lean.baseTransformer.hasDenseWeights && kept.baseTransformer.hasDenseWeights)
        #expect(keys.allSatisfy { lean.baseTransformer.parameters.tensors[$0] == nil })
        #expect(keys.allSatisfy { kept.baseTransformer.parameters.tensors[$0] != nil })
        // What stays dense (embedders, caption refiner, norms) is still there.
        #expect(lean.baseTransformer.parameters.tensors["context_refiner.0.attention.to_q.weight"] != nil)
        #expect(try Self.image(lean) == Self.image(kept))
    }

    @Test(arguments: [Precision.float8, .int8])
    func aLoRAMergesIntoWeightsReadAgain(_ precision: Precision) throws {
        let (lean, kept) = try Self.pipelines(precision)
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

/// `--text-encoder-precision`: the encoder's projections stored apart from the DiT's, in the same
/// activation dtype; a quantised encoder's image stays close to the bf16 encoder's.
@Suite(.serialized) struct TextEncoderPrecisionTests {
    @Test func theEncoderFormatFollowsOrOverridesThePrecision() throws {
        #expect(try Precision.int8.textEncoderLinearFormat() == .int8)
        #expect(try Precision.float8.textEncoderLinearFormat(.bfloat16) == .dense)
        #expect(try Precision.bfloat16.textEncoderLinearFormat(.int8) == .int8)
        #expect(throws: GenerationError.self) { try Precision.float32.textEncoderLinearFormat(.int8) }
        #expect(throws: GenerationError.self) { try Precision.bfloat16.textEncoderLinearFormat(.float16) }
        let pipeline = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .int8,
                                          textEncoderPrecision: .bfloat16)
        #expect(pipeline.textEncoder?.linearFormat == .dense && pipeline.baseTransformer.linearFormat == .int8)
        #expect(throws: GenerationError.self) {
            try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .float32,
                               textEncoderPrecision: .float8)
        }
    }

    @Test(arguments: [Precision.float8, .int8])
    func aQuantisedEncodersFeaturesStayCloseToBF16s(_ precision: Precision) throws {
        let dense = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .bfloat16)
        let quantised = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(), precision: .bfloat16,
                                           textEncoderPrecision: precision)
        let reference = try dense.encodePrompt("a red fox in the snow").features
        let features = try quantised.encodePrompt("a red fox in the snow").features
        // The f32 parity tests bound the exact loss (WeightFormatParityTests); here, that the
        // override reaches the encoder and costs what its format costs: int8 ~1e-2, fp8 ~7e-2.
        let error = try relativeError(features, reference)
        #expect(error > 0 && error < (precision == .int8 ? 3e-2 : 1.5e-1), "\(precision): \(error)")
    }
}
