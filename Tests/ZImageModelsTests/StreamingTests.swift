import Foundation
import Testing
import ZImageCPU
@testable import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// Block streaming (`StreamedLayers`) and the host-side embedding table: streamed layers compute
/// the same bytes as resident ones, on the CPU backend's plain copies (the GPU's stream ordering
/// is checked by the GPU test target).
@Suite struct StreamingTests {
    let backend = CPUBackend()
    let model: ModelDirectory

    init() throws { model = try ModelDirectory(path: Fixtures.tinyModel) }

    /// A layer of one tensor, filled with its index, so a slot shows which layer it holds.
    struct Probe {
        let weight: Tensor
        init(_ source: LoadedParameters, _ index: Int, extent: Int = 3) throws {
            weight = try source.tensor("l\(index).w", shape: [extent])
        }
    }

    func probes(_ count: Int, mismatchAt odd: Int? = nil) throws -> StreamedLayers<Probe> {
        let backend = self.backend
        return try StreamedLayers(count: count, backend: backend, component: "probe", fetch: { key in
            let index = Int(key.dropFirst().prefix { $0 != "." }) ?? -1
            return try backend.tensor([Float](repeating: Float(index), count: index == odd ? 4 : 3),
                                      shape: [index == odd ? 4 : 3])
        }) { index, source in
            try Probe(source, index, extent: index == odd ? 4 : 3)
        }
    }

    @Test func everyLayerComesBackInOrderOutOfOrderAndAfterTheWrap() throws {
        let layers = try probes(5)
        #expect(layers.count == 5)
        // Two passes in order (the second starts from the layer fetched ahead at the wrap), then jumps.
        for index in Array(0..<5) + Array(0..<5) + [3, 1, 4, 4, 0, 2] {
            #expect(try layers.layer(index).weight.toFloats() == [Float](repeating: Float(index), count: 3), "layer \(index)")
        }
        #expect(layers.deviceBytes == 2 * 3 * 4)
        #expect(layers.hostBytes == 5 * 256)
        #expect(throws: TensorError.self) { try layers.layer(5) }
    }

    @Test func releasedSlotsAreMadeAgainOnTheNextCall() throws {
        let layers = try probes(5)
        #expect(try layers.layer(2).weight.toFloats() == [2, 2, 2])
        try layers.releaseSlots()
        #expect(layers.slotsReleased)
        for index in [4, 0, 1, 2, 3, 4, 0] {
            #expect(try layers.layer(index).weight.toFloats() == [Float](repeating: Float(index), count: 3), "layer \(index)")
        }
        #expect(!layers.slotsReleased)
        let pair = try probes(2)
        try pair.releaseSlots()
        #expect(try pair.layer(1).weight.toFloats() == [1, 1, 1] && pair.layer(0).weight.toFloats() == [0, 0, 0])
    }

    @Test func layersOfAnotherShapeAreRefusedByIndex() throws {
        #expect { try probes(4, mismatchAt: 3) } throws: { "\($0)".contains("layer 3") }
    }

    @Test(arguments: [DType.float32, .bfloat16])
    func streamedTransformerEqualsResidentBitForBit(dtype: DType) throws {
        let configuration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                             from: model.component("transformer"))
        let weights = try model.weights(of: "transformer")
        let resident = try ZImageTransformer(configuration: configuration, weights: weights, backend: backend, dtype: dtype)
        let streamed = try ZImageTransformer(configuration: configuration, streamingFrom: weights, backend: backend,
                                             dtype: dtype)
        #expect(streamed.streamsBlocks && !resident.streamsBlocks)
        #expect(configuration.nRefinerLayers + configuration.nLayers > 2, "the fixture must stream past the two slots")
        let features = try backend.tensor((0..<(20 * configuration.capFeatDim)).map { Float(($0 * 37) % 19) / 19 - 0.5 },
                                          shape: [20, configuration.capFeatDim])
        let latent = try backend.tensor((0..<(16 * 8 * 8)).map { Float(($0 * 53) % 23) / 23 - 0.5 }, shape: [16, 1, 8, 8])
        // The streamed caption refiner gives its slots back after each caption and makes them again.
        let other = try features.affine(scale: -0.5, shift: 0.25)
        #expect(try resident.prepareCaption(other, activationDType: dtype).tokens.toBytes()
            == streamed.prepareCaption(other, activationDType: dtype).tokens.toBytes())
        let a = try resident.prepareCaption(features, activationDType: dtype)
        let b = try streamed.prepareCaption(features, activationDType: dtype)
        // Three steps: every block streams in each, and the wrap brings the first back.
        for t in [Float(0.9), 0.5, 0.1] {
            #expect(try resident(latent, t: t, caption: a).toBytes() == streamed(latent, t: t, caption: b).toBytes(), "t \(t)")
        }
    }

    @Test(arguments: [DType.float32, .bfloat16])
    func streamedTextEncoderWithTheTableOnTheHostEqualsResidentBitForBit(dtype: DType) throws {
        let configuration = try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder"))
        let weights = try model.weights(of: "text_encoder")
        let resident = try Qwen3TextEncoder(configuration: configuration, weights: weights, backend: backend, dtype: dtype)
        let streamed = try Qwen3TextEncoder(configuration: configuration, weights: weights, backend: backend, dtype: dtype,
                                            embeddingOnHost: true, streamsLayers: true)
        let hostTable = try Qwen3TextEncoder(configuration: configuration, weights: weights, backend: backend, dtype: dtype,
                                             embeddingOnHost: true)
        #expect(streamed.embeddingOnHost && streamed.streamsLayers && !resident.embeddingOnHost)
        let ids: [Int32] = [3, 640, 17, 17, 703, 0, 251]
        let expected = try resident.encode(ids: ids, activationDType: dtype).toBytes()
        #expect(try streamed.encode(ids: ids, activationDType: dtype).toBytes() == expected)
        #expect(try hostTable.encode(ids: ids, activationDType: dtype).toBytes() == expected)
        #expect(try streamed.encode(ids: [5, 6], activationDType: dtype).toBytes()
            == resident.encode(ids: [5, 6], activationDType: dtype).toBytes())
        // An id outside the table is an error, not a read past it.
        #expect { try hostTable.encode(ids: [1, Int32(configuration.vocabSize)]) } throws: { "\($0)".contains("outside") }
    }

    @Test(arguments: [true, false])
    func streamingPipelineDrawsTheResidentImageWithAndWithoutLoRAs(blocks: Bool) throws {
        let resident = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend, precision: .bfloat16)
        let streamed = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend, precision: .bfloat16,
                                          placement: ComponentPlacement(textEncoder: .streamed,
                                                                        streamsTransformerBlocks: blocks))
        #expect(streamed.placement.streamsTransformerBlocks == blocks && streamed.transformer.streamsBlocks == blocks)
        #expect(streamed.transformer.streamsWeights && streamed.textEncoder?.streamsLayers == true)
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.seed, parameters.steps) = (64, 64, 7, 3)
        for prompt in ["a red fox in the snow", "a lighthouse at dusk"] {
            parameters.prompt = prompt
            let a = try resident.generate(parameters)
            let b = try streamed.generate(parameters)
            #expect(a.count == 1 && b.count == 1)
            #expect(a.first?.image.pixels == b.first?.image.pixels, "\(prompt)")
        }
        // LoRAs: text and block streaming build the transformer again with them merged as each
        // weight is read: the resident pipeline's image with the same LoRA, and without it after.
        let lora = try [WeightedLoRA(LoRAFile(path: Fixtures.path("lora/peft.safetensors")), strength: 0.8)]
        parameters.prompt = "a red fox in the snow"
        try resident.useLoRAs(lora)
        try streamed.useLoRAs(lora)
        #expect(streamed.loras.count == 1 && streamed.transformer.streamsBlocks == blocks)
        #expect(streamed.transformer.streamsWeights, "still streamed after the rebuild")
        let withLoRA = try resident.generate(parameters).first?.image.pixels
        #expect(try streamed.generate(parameters).first?.image.pixels == withLoRA)
        // A LoRA the model has no module for leaves the streamed transformer and its LoRAs as they were.
        let stranger = try [WeightedLoRA(LoRAFile(name: "stranger", modules: [
            "no_such_block.attention.to_q": .lowRank(down: HostMatrix(shape: [1, 4], values: [1, 0, 0, 0]),
                                                     up: HostMatrix(shape: [4, 1], values: [1, 0, 0, 0]))]),
            strength: 1)]
        #expect(throws: (any Error).self) { try streamed.useLoRAs(stranger) }
        #expect(streamed.loras.count == 1)
        #expect(try streamed.generate(parameters).first?.image.pixels == withLoRA)
        try resident.useLoRAs([])
        try streamed.useLoRAs([])
        let plain = try resident.generate(parameters).first?.image.pixels
        #expect(plain != withLoRA, "the LoRA must change the image for this test to mean anything")
        #expect(try streamed.generate(parameters).first?.image.pixels == plain)
    }
}
