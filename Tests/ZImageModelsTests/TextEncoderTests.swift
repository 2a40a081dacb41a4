import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageTokenizer
import ZImageWeights
import ZImageTestSupport

/// The tiny Qwen3 encoder against transformers (float32): `hidden_states[-2]` of the templated
/// prompts in Tests/Fixtures/stages/text_encoder.safetensors, within 1e-4 relative error (issue #3).
@Suite struct TextEncoderTests {
    let backend = CPUBackend()
    let model: ModelDirectory
    let tokenizer: BPETokenizer
    let encoder: Qwen3TextEncoder
    let tokens: SafetensorsFile
    let goldens: SafetensorsFile

    init() throws {
        model = try ModelDirectory(path: Fixtures.tinyModel)
        tokenizer = try BPETokenizer(path: Fixtures.path("tiny-zimage/tokenizer/tokenizer.json"))
        let configuration = try ComponentConfiguration.decode(Qwen3Configuration.self,
                                                             from: model.component("text_encoder"))
        encoder = try Qwen3TextEncoder(configuration: configuration, weights: model.weights(of: "text_encoder"),
                                       backend: backend)
        tokens = try SafetensorsFile(path: Fixtures.path("stages/tokens.safetensors"))
        goldens = try SafetensorsFile(path: Fixtures.path("stages/text_encoder.safetensors"))
    }

    func prompts() throws -> [String: String] {
        let data = try #require(tokens.metadata["params"]?.data(using: .utf8))
        let params = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(params["prompts"] as? [String: String])
    }

    @Test(arguments: ["prompt", "negative", "empty", "long"])
    func hiddenStatesMatchTransformers(name: String) throws {
        let prompt = try #require(try prompts()[name])
        let tokenized = TokenizedPrompt(prompt: prompt, tokenizer: tokenizer)
        // The ids equal the reference tokenizer's (the unpadded part of input_ids).
        let reference = try tokens.tensor("\(name).input_ids", on: backend).toFloats().map { Int32($0) }
        let mask = try tokens.tensor("\(name).attention_mask", on: backend).toFloats()
        let realCount = mask.filter { $0 != 0 }.count
        #expect(tokenized.ids == Array(reference.prefix(realCount)))
        #expect(!tokenized.truncated)

        let hidden = try encoder.encode(ids: tokenized.ids)
        let expected = try goldens.tensor("\(name).prompt_embeds", on: backend)
        #expect(hidden.shape == expected.shape)
        let error = relativeError(try hidden.toFloats(), try expected.toFloats())
        #expect(error < 1e-4, "\(name): relative error \(error)")
    }

    @Test func onlyTheNeededLayersAreLoaded() throws {
        let configuration = encoder.configuration
        let spec = Qwen3TextEncoder.parameterSpec(configuration)
        #expect(encoder.layerCount == configuration.numHiddenLayers - 1)
        #expect(spec.shapes.keys.contains { $0.hasPrefix("model.layers.\(configuration.numHiddenLayers - 1).") } == false)
        #expect(spec.shapes["model.embed_tokens.weight"] == [configuration.vocabSize, configuration.hiddenSize])
        // The last layer's keys are in the checkpoint but deliberately ignored, not unexpected.
        let weights = try model.weights(of: "text_encoder")
        #expect(weights.keys.contains("model.layers.\(configuration.numHiddenLayers - 1).mlp.up_proj.weight"))
        try spec.verify(weights, component: "text_encoder")
    }

    @Test func templateMatchesTheReferenceRendering() throws {
        let data = try #require(tokens.metadata["rendered"]?.data(using: .utf8))
        let rendered = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        for (name, prompt) in try prompts() {
            #expect(PromptTemplate.render(prompt) == rendered[name], "\(name)")
        }
    }

    @Test func longPromptsAreCutAtTheLimit() {
        let prompt = String(repeating: "snow fox ", count: 400)
        let tokenized = TokenizedPrompt(prompt: prompt, tokenizer: tokenizer)
        #expect(tokenized.ids.count == 512)
        #expect(tokenized.truncated && tokenized.fullLength > 512)
        // The reference cuts the rendered string, so the template's tail is lost.
        #expect(tokenized.ids.last != tokenizer.id(of: "<|im_end|>"))
        #expect(tokenized.ids.first == tokenizer.id(of: "<|im_start|>"))
    }

    /// Qwen3-4B as Z-Image uses it: layers 0…34 and the embeddings, 3,921,534,720 + 388,956,160
    /// parameters; layer 35 and the final norm stay on disk.
    @Test func realConfigurationLoadsTheSpecParameters() {
        let qwen3 = Qwen3Configuration(hiddenSize: 2560, intermediateSize: 9728, numHiddenLayers: 36,
                                       numAttentionHeads: 32, numKeyValueHeads: 8, headDim: 128, rmsNormEps: 1e-6,
                                       ropeTheta: 1_000_000, vocabSize: 151_936)
        let spec = Qwen3TextEncoder.parameterSpec(qwen3)
        #expect(spec.shapes.count == 1 + 35 * 11)
        #expect(spec.shapes.values.reduce(0) { $0 + $1.count } == 388_956_160 + 35 * 100_930_816)
        #expect(spec.shapes["model.layers.0.self_attn.k_proj.weight"] == [1024, 2560])
    }
}
