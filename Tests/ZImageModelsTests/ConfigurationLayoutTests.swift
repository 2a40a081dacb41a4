import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// Text-encoder configs and keys as transformers reads them (issue 11 item 1): both spellings of
/// RoPE and dtype, the reference's defaults, unknown fields ignored, errors naming file and field,
/// and `Qwen3Model` checkpoints (no `model.` prefix) next to `Qwen3ForCausalLM` ones.
@Suite struct Qwen3ConfigurationTests {
    func decode(_ json: String) throws -> Qwen3Configuration {
        let path = NSTemporaryDirectory() + "zimage-config-\(UUID().uuidString).json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ComponentConfiguration.decode(Qwen3Configuration.self, path: path)
    }

    func failure(_ json: String) -> String {
        do {
            _ = try decode(json)
            return "decoded"
        } catch let error as WeightLoadingError {
            guard case .malformedJSON(let path, let detail) = error, path.hasSuffix(".json") else { return "\(error)" }
            return detail
        } catch {
            return "\(error)"
        }
    }

    @Test func bothTransformersSpellingsGiveOneConfiguration() throws {
        let v4 = try ComponentConfiguration.decode(Qwen3Configuration.self,
                                                   path: Fixtures.path("tiny-zimage/text_encoder/config.json"))
        let v5 = try ComponentConfiguration.decode(Qwen3Configuration.self,
                                                   path: Fixtures.path("layouts/tiny-zimage-tf5/text_encoder/config.json"))
        #expect(v4.ropeTheta == 1_000_000 && v5.ropeTheta == 1_000_000)
        #expect(v4.dtype == "bfloat16" && v5.dtype == "bfloat16")
        #expect(v4.architectures == ["Qwen3ForCausalLM"] && v5.architectures == ["Qwen3Model"])
        var same = v5
        same.architectures = v4.architectures
        #expect(same == v4)
    }

    @Test func absentFieldsTakeQwen3ConfigDefaults() throws {
        let c = try decode("{}")
        #expect(c.vocabSize == 151_936 && c.hiddenSize == 4096 && c.intermediateSize == 22016)
        #expect(c.numHiddenLayers == 32 && c.numAttentionHeads == 32 && c.numKeyValueHeads == 32)
        #expect(c.resolvedHeadDim == 128 && c.rmsNormEps == 1e-6 && c.ropeTheta == 10_000)
        #expect(c.dtype == nil && c.architectures == nil)
        // null key/value heads means one per query head; rope_parameters without a theta takes the top-level one.
        let d = try decode(#"{"num_attention_heads": 16, "num_key_value_heads": null, "rope_theta": 5.0, "rope_parameters": {"rope_type": "default"}}"#)
        #expect(d.numKeyValueHeads == 16 && d.ropeTheta == 5)
        // rope_parameters' theta wins; 4.x rope_scaling with type "default" reads the same way.
        #expect(try decode(#"{"rope_theta": 5.0, "rope_parameters": {"rope_theta": 7.0, "rope_type": "default"}}"#).ropeTheta == 7)
        #expect(try decode(#"{"rope_scaling": {"type": "default", "rope_theta": 9.0}}"#).ropeTheta == 9)
        // dtype wins over torch_dtype, as in transformers 5.
        #expect(try decode(#"{"torch_dtype": "float32", "dtype": "bfloat16"}"#).dtype == "bfloat16")
    }

    @Test func unknownFieldsAreIgnored() throws {
        let c = try decode(#"{"hidden_size": 64, "some_future_field": {"x": [1, 2]}, "quantization_config": null}"#)
        #expect(c.hiddenSize == 64)
    }

    @Test func wrongTypesNameTheField() {
        #expect(failure(#"{"hidden_size": "32"}"#) == "field 'hidden_size': expected an integer")
        #expect(failure(#"{"rope_parameters": {"rope_theta": "big"}}"#) == "field 'rope_parameters.rope_theta': expected a number")
        #expect(failure(#"{"rope_parameters": 3}"#) == "field 'rope_parameters': expected an object")
        #expect(failure(#"{"architectures": "Qwen3Model"}"#) == "field 'architectures': expected an array")
        #expect(failure(#"{"dtype": 16}"#) == "field 'dtype': expected a string")
        #expect(failure("[1]").hasPrefix("the top level"))
    }

    @Test func whatCannotRunIsRefusedByName() {
        #expect(failure(#"{"model_type": "llama"}"#).hasPrefix("field 'model_type' is 'llama'"))
        #expect(failure(#"{"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}"#)
            .hasPrefix("field 'rope_parameters.rope_type' is 'yarn'"))
        #expect(failure(#"{"attention_bias": true}"#).hasPrefix("field 'attention_bias'"))
        #expect(failure(#"{"hidden_act": "gelu"}"#).hasPrefix("field 'hidden_act'"))
        #expect(failure(#"{"num_hidden_layers": 2, "layer_types": ["full_attention", "sliding_attention"]}"#)
            .hasPrefix("field 'layer_types'"))
        #expect(failure(#"{"hidden_size": 0}"#).hasPrefix("field 'hidden_size' is 0"))
        #expect(failure(#"{"hidden_size": 9223372036854775807}"#).hasPrefix("field 'hidden_size'"))
        #expect(failure(#"{"num_attention_heads": 6, "num_key_value_heads": 4}"#).hasPrefix("field 'num_key_value_heads'"))
    }

    @Test func errorsNameTheFile() throws {
        let directory = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(#"{"hidden_size": true}"#.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        #expect(throws: WeightLoadingError.malformedJSON(path: directory + "/config.json",
                                                         detail: "field 'hidden_size': expected an integer")) {
            try ComponentConfiguration.decode(Qwen3Configuration.self, path: directory + "/config.json")
        }
    }
}

/// The same tiny weights saved by transformers 5 (`Qwen3Model.save_pretrained`, written by
/// tools/fixtures/make_layouts.py) load and give bit-identical outputs to the original layout.
@Suite(.serialized) struct TransformersFiveLayoutTests {
    static var tf5: String { Fixtures.path("layouts/tiny-zimage-tf5") }

    @Test func textEncoderKeysLoseTheirPrefixAndStillLoad() throws {
        let weights = try ModelDirectory(path: Self.tf5).weights(of: "text_encoder")
        #expect(weights.keys.contains("layers.0.self_attn.q_proj.weight"))
        #expect(!weights.keys.contains { $0.hasPrefix("model.") })
        let backend = CPUBackend()
        let original = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend, precision: .float32)
        let other = try ZImagePipeline(modelDirectory: Self.tf5, backend: backend, precision: .float32)
        for prompt in ["a red fox in the snow", "", "blurry"] {
            let a = try original.encodePrompt(prompt).features.toFloats()
            let b = try other.encodePrompt(prompt).features.toFloats()
            #expect(a == b, "\(prompt)")
        }
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.steps, parameters.seed) = (64, 64, 2, 42)
        let imageA = try original.generate(parameters) { _ in true }
        let imageB = try other.generate(parameters) { _ in true }
        #expect(imageA.map(\.image.pixels) == imageB.map(\.image.pixels))
    }

    @Test func lmHeadIsIgnoredAndDoubledKeysAreNamed() throws {
        let directory = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = try SafetensorsFile(path: Self.tf5 + "/text_encoder/model.safetensors")
        let backend = CPUBackend()
        var entries = try source.names.map { name in
            let tensor = try source.tensor(name, on: backend, as: .float32)
            return try SafetensorsWriter.Entry(name: name, values: tensor.toFloats(), shape: tensor.shape)
        }
        let configuration = try ComponentConfiguration.decode(
            Qwen3Configuration.self, path: Self.tf5 + "/text_encoder/config.json")
        let embed = try #require(entries.first { $0.name == "embed_tokens.weight" })
        entries.append(SafetensorsWriter.Entry(name: "lm_head.weight", dtype: .float32, shape: embed.shape,
                                               bytes: embed.bytes))
        try SafetensorsWriter.write(entries, to: directory + "/with-head.safetensors")
        let encoder = try Qwen3TextEncoder(configuration: configuration,
                                           weights: WeightSet(path: directory + "/with-head.safetensors"),
                                           backend: backend)
        #expect(try encoder.encode(ids: [1, 2, 3]).shape == [3, configuration.hiddenSize])

        // One parameter both with and without the prefix: refused, naming both keys.
        var entries2 = entries
        entries2.append(SafetensorsWriter.Entry(name: "model.embed_tokens.weight", dtype: .float32, shape: embed.shape,
                                                bytes: embed.bytes))
        try SafetensorsWriter.write(entries2, to: directory + "/doubled.safetensors")
        #expect(throws: WeightLoadingError.duplicateKey(key: "model.embed_tokens.weight", first: "'embed_tokens.weight'",
                                                        second: "'model.embed_tokens.weight'")) {
            try Qwen3TextEncoder(configuration: configuration, weights: WeightSet(path: directory + "/doubled.safetensors"),
                                 backend: backend)
        }
    }
}

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "zimage-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// `vae/config.json` as diffusers' `AutoencoderKL` reads it.
@Suite struct AutoencoderConfigurationTests {
    func decode(_ json: String) throws -> AutoencoderConfiguration {
        try JSONDecoder().decode(AutoencoderConfiguration.self, from: Data(json.utf8))
    }

    @Test func diffusersDefaultsAndTheRealConfig() throws {
        let defaults = try decode("{}")
        #expect(defaults == AutoencoderConfiguration(inChannels: 3, outChannels: 3, latentChannels: 4, blockOutChannels: [64],
                                                     layersPerBlock: 1, normNumGroups: 32, scalingFactor: 0.18215,
                                                     shiftFactor: nil, midBlockAddAttention: true, usePostQuantConv: true))
        let tiny = try ComponentConfiguration.decode(AutoencoderConfiguration.self,
                                                     path: Fixtures.path("tiny-zimage/vae/config.json"))
        #expect(tiny.blockOutChannels == [16, 32, 32, 32] && tiny.normNumGroups == 8 && tiny.usePostQuantConv == false)
        // What the encoder writes (the demo model) reads back the same.
        let data = try JSONEncoder().encode(AutoencoderConfiguration.zImageTurbo)
        #expect(try JSONDecoder().decode(AutoencoderConfiguration.self, from: data) == .zImageTurbo)
    }

    @Test func badValuesNameTheField() {
        func detail(_ json: String) -> String {
            do { _ = try decode(json); return "decoded" } catch let error as DecodingError {
                return ComponentConfiguration.describe(error)
            } catch { return "\(error)" }
        }
        #expect(detail(#"{"block_out_channels": [16, "32"]}"#) == "field 'block_out_channels[1]': expected an integer")
        #expect(detail(#"{"act_fn": "gelu"}"#).hasPrefix("field 'act_fn' is 'gelu'"))
        #expect(detail(#"{"block_out_channels": [16, 24], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 16}"#)
            .hasPrefix("field 'norm_num_groups' (16) does not divide"))
        #expect(detail(#"{"up_block_types": ["AttnUpDecoderBlock2D"]}"#).hasPrefix("field 'up_block_types' contains"))
        #expect(detail(#"{"scaling_factor": 0}"#).hasPrefix("field 'scaling_factor'"))
    }
}
