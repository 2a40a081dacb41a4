import Testing
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// The tiny DiT against diffusers in float32 (stages/transformer.safetensors).
@Suite struct TransformerTests {
    let backend = CPUBackend()
    let transformer: ZImageTransformer
    let golden: SafetensorsFile

    init() throws {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        let configuration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                             from: model.component("transformer"))
        transformer = try ZImageTransformer(configuration: configuration, weights: model.weights(of: "transformer"),
                                            backend: backend)
        golden = try SafetensorsFile(path: Fixtures.path("stages/transformer.safetensors"))
    }

    func tensor(_ name: String) throws -> Tensor { try golden.tensor(name, on: backend) }

    @Test func timestepEmbeddingMatches() throws {
        let t = try tensor("t").toFloats()[0]
        let c = try transformer.timestepEmbedding(t, activationDType: .float32, backend: backend)
        let error = relativeError(try c.toFloats(), try tensor("c").toFloats())
        #expect(error < 1e-5, "c: \(error)")
    }

    @Test func forwardMatchesDiffusers() throws {
        let caption = try transformer.prepareCaption(tensor("cap_feats"), activationDType: .float32)
        #expect(caption.paddedLength == 32 && caption.length == 16)
        let refined = try tensor("context_refiner_0_out")
        #expect(relativeError(try caption.tokens.toFloats(), try refined.reshaped([32, 64]).toFloats()) < 1e-5)
        let out = try transformer(tensor("x"), t: tensor("t").toFloats()[0], caption: caption)
        let expected = try tensor("out")
        #expect(out.shape == expected.shape)
        let error = relativeError(try out.toFloats(), try expected.toFloats())
        #expect(error < 1e-4, "transformer output: \(error)")
    }

    /// A batch with different image sizes, caption lengths and times (the reference masks; we run
    /// items one by one): each output matches.
    @Test func batchItemsMatchOneByOne() throws {
        let times = try tensor("b2.t").toFloats()
        for (index, (image, captionName)) in [("b2.x0", "b2.cap0"), ("b2.x1", "b2.cap1")].enumerated() {
            let caption = try transformer.prepareCaption(tensor(captionName), activationDType: .float32)
            let out = try transformer(tensor(image), t: times[index], caption: caption)
            let error = relativeError(try out.toFloats(), try tensor("b2.out\(index)").toFloats())
            #expect(error < 1e-4, "item \(index): \(error)")
        }
    }

    @Test func refusesWrongShapes() throws {
        let caption = try transformer.prepareCaption(tensor("cap_feats"), activationDType: .float32)
        #expect(throws: TensorError.self) {
            try transformer(backend.tensor([Float](repeating: 1, count: 16 * 7 * 8), shape: [16, 1, 7, 8]), t: 0.5,
                            caption: caption)
        }
        #expect(throws: TensorError.self) {
            try transformer.prepareCaption(backend.tensor([1, 2, 3], shape: [1, 3]), activationDType: .float32)
        }
    }

    /// The real configuration's parameter list is the checkpoint's: 521 tensors, 6,154,908,736
    /// parameters (the count diffusers' own model reports).
    @Test func realConfigurationMatchesTheCheckpointLayout() {
        let spec = ZImageTransformer.parameterSpec(.zImageTurbo)
        #expect(spec.shapes.count == 521)
        #expect(spec.shapes.values.reduce(0) { $0 + $1.count } == 6_154_908_736)
        #expect(spec.shapes["layers.29.adaLN_modulation.0.weight"] == [15360, 256])
        #expect(spec.shapes["all_x_embedder.2-1.weight"] == [3840, 64])
        #expect(spec.shapes["context_refiner.1.adaLN_modulation.0.weight"] == nil)
    }

    /// FP8 is declared by the image-token blocks' projections only (2 noise-refiner and 30 main
    /// blocks, 7 projections each); the keys and shapes are the dense model's.
    @Test func float8IsDeclaredByTheImageBlocksProjections() {
        let spec = ZImageTransformer.parameterSpec(.zImageTurbo, linearFormat: .float8)
        #expect(spec.formats.count == (2 + 30) * 7)
        #expect(spec.formats["layers.29.feed_forward.w2.weight"] == .float8)
        #expect(spec.formats["noise_refiner.0.attention.to_q.weight"] == .float8)
        #expect(spec.formats["context_refiner.0.attention.to_q.weight"] == nil)
        #expect(spec.formats["layers.0.adaLN_modulation.0.weight"] == nil)
        #expect(spec.shapes == ZImageTransformer.parameterSpec(.zImageTurbo).shapes)
        #expect(ZImageTransformer.parameterSpec(.zImageTurbo).formats.isEmpty)
    }

    /// Building from a store (as after a LoRA merge) checks each tensor against the shape its
    /// layer declares, naming the key.
    @Test func aMisShapedStoredTensorIsNamed() throws {
        var tensors = transformer.parameters.tensors
        let key = "layers.0.feed_forward.w1.weight"
        let original = try #require(tensors[key])
        tensors[key] = try original.reshaped([original.count])
        let store = ParameterStore(component: "transformer", tensors: tensors)
        #expect(throws: WeightLoadingError.shapeMismatch(component: "transformer", key: key, expected: original.shape,
                                                         found: [original.count])) {
            try ZImageTransformer(configuration: transformer.configuration, parameters: store)
        }
    }

    /// With `.float8` the image blocks' projections are quantised as the layers are built: the
    /// output moves (the weights really are FP8) but stays near diffusers' dense one.
    @Test func float8LayersAreQuantisedAtBuildAndStayClose() throws {
        let fp8 = try ZImageTransformer(configuration: transformer.configuration, parameters: transformer.parameters,
                                        linearFormat: .float8)
        let caption = try fp8.prepareCaption(tensor("cap_feats"), activationDType: .float32)
        let out = try fp8(tensor("x"), t: tensor("t").toFloats()[0], caption: caption)
        let error = try relativeError(out, tensor("out"))
        #expect(error > 1e-6 && error < 0.1, "fp8 transformer output: \(error)")
    }
}
