import Crypto
import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// The tiny transformer in every quantised layout (Tests/Fixtures/layouts/quantised, written by
/// tools/fixtures/make_quantised.py with its diffusers goldens): plain / scaled / comfy_quant fp8
/// safetensors and GGUF Q8_0, F16, BF16 (issue 11 item 3).
///
/// Bounds: the weights we widen are checked **bit for bit** against the reference's dequantised
/// weights (SHA-256 of every tensor as float32, diffusers names). With identical float32 weights
/// the rest is the f32 engine against diffusers f32, so the bounds are the existing parity ones
/// (TransformerTests: relative error < 1e-4; PipelineParityTests: no pixel off by more than 2,
/// ≥ 99.5 % within 1) — not loosened for quantisation, whose loss is in the golden itself.
@Suite(.serialized) struct QuantisedLayoutTests {
    static let layouts = [
        ("fp8", "tiny_zimage_fp8.safetensors"), ("scaled_fp8", "tiny_zimage_scaled_fp8.safetensors"),
        ("comfy_quant", "tiny_zimage_comfy_quant.safetensors"), ("Q8_0", "tiny_zimage_Q8_0.gguf"),
        ("F16", "tiny_zimage_F16.gguf"), ("BF16", "tiny_zimage_BF16.gguf"),
    ]
    static func file(_ name: String) -> String { Fixtures.path("layouts/quantised/" + name) }

    let backend = CPUBackend()
    let model: ModelDirectory
    let golden: SafetensorsFile

    init() throws {
        model = try ModelDirectory(path: Fixtures.tinyModel)
        golden = try SafetensorsFile(path: Self.file("golden.safetensors"))
    }

    var configurations: SplitFiles.Configurations {
        get throws {
            SplitFiles.Configurations(
                transformer: try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                               from: model.component("transformer")),
                textEncoder: try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder")),
                autoencoder: try ComponentConfiguration.decode(AutoencoderConfiguration.self, from: model.component("vae")))
        }
    }

    @Test(arguments: layouts) func weightsAreTheReferenceDequantisedWeights(layout: String, name: String) throws {
        let weights = try SplitFiles.transformerWeights(Self.file(name))
        #expect(SplitFiles.role(of: try WeightSet(path: Self.file(name))) == .transformer)
        var hash = SHA256()
        for key in weights.keys {
            let values = try weights.tensor(key, on: backend, as: .float32).toFloats()
            values.withUnsafeBytes { hash.update(bufferPointer: $0) }
        }
        let digest = hash.finalize().map { String(format: "%02x", $0) }.joined()
        #expect(digest == golden.metadata["sha256.\(layout)"], "\(layout)")
        // Helper tensors (scales, markers, comfy_quant) are consumed, not left as unexpected keys.
        let reference = try model.weights(of: "transformer")
        #expect(weights.keys == reference.keys, "\(layout)")
    }

    @Test(arguments: layouts) func transformerOutputMatchesDiffusers(layout: String, name: String) throws {
        let transformer = try ZImageTransformer(configuration: configurations.transformer,
                                                weights: SplitFiles.transformerWeights(Self.file(name)), backend: backend)
        let stages = try SafetensorsFile(path: Fixtures.path("stages/transformer.safetensors"))
        let caption = try transformer.prepareCaption(stages.tensor("cap_feats", on: backend), activationDType: .float32)
        let out = try transformer(stages.tensor("x", on: backend), t: stages.tensor("t", on: backend).toFloats()[0],
                                  caption: caption)
        let error = relativeError(try out.toFloats(), try golden.tensor("\(layout).out", on: backend).toFloats())
        #expect(error < 1e-4, "\(layout): relative error \(error)")
    }

    @Test(arguments: ["Q8_0", "scaled_fp8"]) func splitFilesGiveTheReferenceImage(layout: String) throws {
        let name = try #require(Self.layouts.first { $0.0 == layout }).1
        let comfy = Fixtures.path("layouts/comfyui")
        let files = SplitFiles(transformer: Self.file(name), textEncoder: comfy + "/text_encoders/qwen_3_4b.safetensors",
                               vae: comfy + "/vae/ae.safetensors", tokenizer: Fixtures.path("tiny-zimage/tokenizer"))
        let pipeline = try ZImagePipeline(splitFiles: files, configurations: configurations, backend: backend)
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.steps, parameters.seed) = (64, 64, 2, 42)
        let pixels = try #require(try pipeline.generate(parameters) { _ in true }.first).image.pixels
        let expected = try golden.tensor("\(layout).image", on: backend).toBytes()
        #expect(pixels.count == expected.count)
        var worst = 0, within1 = 0
        for (ours, theirs) in zip(pixels, expected) {
            let difference = abs(Int(ours) - Int(theirs))
            worst = max(worst, difference)
            if difference <= 1 { within1 += 1 }
        }
        #expect(worst <= 2, "\(layout): a pixel is off by \(worst)")
        #expect(Double(within1) / Double(max(expected.count, 1)) >= 0.995, "\(layout): \(within1) within 1")
    }

    /// A ComfyUI folder holding a GGUF transformer: found by its keys like a .safetensors one, and
    /// with no tokenizer folder the bundled Qwen tokenizer is chosen (nil).
    @Test func detectionFindsGGUFTransformers() throws {
        let folder = NSTemporaryDirectory() + "zimage-gguf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/diffusion_models", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let comfy = Fixtures.path("layouts/comfyui")
        try FileManager.default.copyItem(atPath: Self.file("tiny_zimage_Q8_0.gguf"), toPath: folder + "/diffusion_models/z.gguf")
        try FileManager.default.copyItem(atPath: comfy + "/vae", toPath: folder + "/vae")
        try FileManager.default.copyItem(atPath: comfy + "/text_encoders", toPath: folder + "/text_encoders")
        let found = try SplitFiles.detect(in: folder)
        #expect(found.transformer == folder + "/diffusion_models/z.gguf")
        #expect(found.tokenizer == nil)
    }

    @Test func bfloat16PrecisionWidensThenRounds() throws {
        let weights = try SplitFiles.transformerWeights(Self.file("tiny_zimage_Q8_0.gguf"))
        let key = "layers.0.attention.to_q.weight"
        let f32 = try weights.tensor(key, on: backend, as: .float32).toFloats()
        let bf16 = try weights.tensor(key, on: backend, as: .bfloat16)
        #expect(bf16.dtype == .bfloat16)
        #expect(try bf16.toFloats() == f32.map(HalfPrecision.roundedToBFloat16))
    }
}
