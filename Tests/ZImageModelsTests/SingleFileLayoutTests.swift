import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// ComfyUI split files of the tiny weights (Tests/Fixtures/layouts/comfyui, written by
/// tools/fixtures/make_layouts.py and checked there against diffusers' own converters) give
/// bit-identical float32 outputs to the diffusers layout, component by component (issue 11 item 2).
@Suite(.serialized) struct SingleFileLayoutTests {
    let backend = CPUBackend()
    let model: ModelDirectory
    static var comfy: String { Fixtures.path("layouts/comfyui") }

    init() throws { model = try ModelDirectory(path: Fixtures.tinyModel) }

    func transformerOutput(_ weights: WeightSet) throws -> [Float] {
        let configuration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                             from: model.component("transformer"))
        let transformer = try ZImageTransformer(configuration: configuration, weights: weights, backend: backend)
        let golden = try SafetensorsFile(path: Fixtures.path("stages/transformer.safetensors"))
        let caption = try transformer.prepareCaption(golden.tensor("cap_feats", on: backend), activationDType: .float32)
        return try transformer(golden.tensor("x", on: backend), t: golden.tensor("t", on: backend).toFloats()[0],
                               caption: caption).toFloats()
    }

    @Test func comfyTransformerIsBitIdentical() throws {
        let file = try WeightSet(path: Self.comfy + "/diffusion_models/tiny_zimage.safetensors")
        #expect(SingleFileLayout.isComfyTransformer(file))
        #expect(!SingleFileLayout.isComfyTransformer(try model.weights(of: "transformer")))
        let mapped = try SingleFileLayout.comfyTransformer(file)
        #expect(mapped.keys.contains("layers.0.attention.to_k.weight"))
        #expect(mapped.entries["all_x_embedder.2-1.weight"] != nil)
        let reference = try transformerOutput(model.weights(of: "transformer"))
        #expect(try transformerOutput(mapped) == reference)

        // As saved from ComfyUI: `model.diffusion_model.` on every key and a stray `norm_final.weight`.
        let directory = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var entries = try file.keys.map { key in
            let tensor = try file.tensor(key, on: backend)
            return try SafetensorsWriter.Entry(name: "model.diffusion_model." + key, values: tensor.toFloats(),
                                               shape: tensor.shape)
        }
        entries.append(try SafetensorsWriter.Entry(name: "norm_final.weight", values: [.nan, 7], shape: [2]))
        try SafetensorsWriter.write(entries, to: directory + "/checkpoint.safetensors")
        let prefixed = try WeightSet(path: directory + "/checkpoint.safetensors")
        #expect(SingleFileLayout.isComfyTransformer(prefixed))
        #expect(try transformerOutput(SingleFileLayout.comfyTransformer(prefixed)) == reference)
    }

    @Test func fusedProjectionOfTheWrongHeightIsNamed() throws {
        let directory = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SafetensorsWriter.write([SafetensorsWriter.Entry(name: "layers.0.attention.qkv.weight",
                                                             values: [Float](repeating: 0, count: 8), shape: [4, 2])],
                                    to: directory + "/bad.safetensors")
        #expect(throws: WeightLoadingError.shapeMismatch(component: "transformer", key: "layers.0.attention.qkv.weight",
                                                         expected: [3, 2], found: [4, 2])) {
            try SingleFileLayout.comfyTransformer(WeightSet(path: directory + "/bad.safetensors"))
        }
    }

    @Test func bflAutoencoderIsBitIdentical() throws {
        let configuration = try ComponentConfiguration.decode(AutoencoderConfiguration.self, from: model.component("vae"))
        let file = try WeightSet(path: Self.comfy + "/vae/ae.safetensors")
        #expect(SingleFileLayout.isBFLAutoencoder(file))
        #expect(file.entries["decoder.mid.attn_1.q.weight"]?.shape == [32, 32, 1, 1])
        let mapped = try SingleFileLayout.bflAutoencoder(file)
        #expect(mapped.entries["decoder.mid_block.attentions.0.to_q.weight"]?.shape == [32, 32])
        let golden = try SafetensorsFile(path: Fixtures.path("stages/vae.safetensors"))
        let latents = try golden.tensor("z", on: backend)
        let reference = try VAEDecoder(configuration: configuration, weights: model.weights(of: "vae"), backend: backend)
        let bfl = try VAEDecoder(configuration: configuration, weights: mapped, backend: backend)
        #expect(try bfl.decode(latents).toFloats() == reference.decode(latents).toFloats())
    }

    @Test func singleFileTextEncoderIsBitIdentical() throws {
        let configuration = try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder"))
        let reference = try Qwen3TextEncoder(configuration: configuration, weights: model.weights(of: "text_encoder"),
                                             backend: backend)
        let single = try Qwen3TextEncoder(configuration: configuration,
                                          weights: WeightSet(path: Self.comfy + "/text_encoders/qwen_3_4b.safetensors"),
                                          backend: backend)
        let ids: [Int32] = [640, 641, 5, 77, 300, 642]
        #expect(try single.encode(ids: ids).toFloats() == reference.encode(ids: ids).toFloats())
    }
}

/// The whole pipeline from the split files (ComfyUI's layout) gives the directory's pixels exactly.
@Suite struct SplitFilesPipelineTests {
    @Test func splitFilesGiveTheSameImage() throws {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        let configurations = SplitFiles.Configurations(
            transformer: try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                           from: model.component("transformer")),
            textEncoder: try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder")),
            autoencoder: try ComponentConfiguration.decode(AutoencoderConfiguration.self, from: model.component("vae")))
        let comfy = Fixtures.path("layouts/comfyui")
        let files = SplitFiles(transformer: comfy + "/diffusion_models/tiny_zimage.safetensors",
                               textEncoder: comfy + "/text_encoders/qwen_3_4b.safetensors",
                               vae: comfy + "/vae/ae.safetensors", tokenizer: Fixtures.path("tiny-zimage/tokenizer"))
        let backend = CPUBackend()
        let split = try ZImagePipeline(splitFiles: files, configurations: configurations, backend: backend)
        let directory = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend)
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.steps, parameters.seed) = (64, 64, 2, 42)
        let a = try split.generate(parameters) { _ in true }.map(\.image.pixels)
        let b = try directory.generate(parameters) { _ in true }.map(\.image.pixels)
        #expect(a == b)
        // The real model's configurations refuse the tiny files by key and shape, naming the file.
        #expect { try ZImagePipeline(splitFiles: files, backend: backend) } throws: { error in
            guard case WeightLoadingError.missingKeys(let component, _) = error else { return false }
            return component == "text_encoder (\(files.textEncoder))"
        }
        // A transformer file that lost a layer's fused projection: refused, naming file and key.
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try SafetensorsFile(path: files.transformer)
        let kept = try source.names.filter { $0 != "layers.1.attention.qkv.weight" }.map { name in
            let tensor = try source.tensor(name, on: backend)
            return try SafetensorsWriter.Entry(name: name, values: tensor.toFloats(), shape: tensor.shape)
        }
        try SafetensorsWriter.write(kept, to: folder + "/broken.safetensors")
        var broken = files
        broken.transformer = folder + "/broken.safetensors"
        #expect(throws: WeightLoadingError.missingKeys(component: "transformer (\(broken.transformer))", keys: [
            "layers.1.attention.to_k.weight", "layers.1.attention.to_q.weight", "layers.1.attention.to_v.weight",
        ])) { try ZImagePipeline(splitFiles: broken, configurations: configurations, backend: backend) }
    }
}

/// A ComfyUI `models/` folder: the three files are found by their keys, not their names.
@Suite struct SplitFilesDetectionTests {
    @Test func filesAreFoundByTheirKeys() throws {
        let comfy = Fixtures.path("layouts/comfyui")
        let tokenizer = Fixtures.path("tiny-zimage/tokenizer")
        let found = try SplitFiles.detect(in: comfy, tokenizer: tokenizer)
        #expect(found == SplitFiles(transformer: comfy + "/diffusion_models/tiny_zimage.safetensors",
                                    textEncoder: comfy + "/text_encoders/qwen_3_4b.safetensors",
                                    vae: comfy + "/vae/ae.safetensors", tokenizer: tokenizer))
        // Renamed files in one folder are still told apart; a second transformer is an error naming both.
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = FileManager.default
        try files.copyItem(atPath: found.transformer, toPath: folder + "/a.safetensors")
        try files.copyItem(atPath: found.vae, toPath: folder + "/b.safetensors")
        try files.copyItem(atPath: found.textEncoder, toPath: folder + "/c.safetensors")
        #expect(try SplitFiles.detect(in: folder, tokenizer: tokenizer).vae == folder + "/b.safetensors")
        try files.copyItem(atPath: found.transformer, toPath: folder + "/d.safetensors")
        #expect(throws: GenerationError.modelNotSupported("\(folder): 2 transformer checkpoints (\(folder)/a.safetensors, "
            + "\(folder)/d.safetensors); choose with --transformer, --text-encoder and --vae")) {
            try SplitFiles.detect(in: folder, tokenizer: tokenizer)
        }
    }
}
