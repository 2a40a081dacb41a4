import Foundation
import Testing
import ZImageCLI
import ZImageWeights
import ZImageTestSupport

@Suite struct InspectCommandTests {
    @Test func modelDirectoryReportListsComponents() throws {
        let report = try InspectCommand.report(path: Fixtures.path("tiny-zimage"), listTensors: false)
        #expect(report.pipeline == "ZImagePipeline")
        #expect(report.components.map(\.name) == ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"])
        let transformer = try #require(report.components.first { $0.name == "transformer" })
        #expect(transformer.files.count == 2)
        #expect(transformer.bytesByDType.keys.sorted() == ["F32"])
        #expect(transformer.totalBytes == transformer.parameterCount * 4)
        let encoder = try #require(report.components.first { $0.name == "text_encoder" })
        #expect(encoder.bytesByDType.keys.sorted() == ["BF16"])
        let text = report.text()
        #expect(text.contains("transformer (ZImageTransformer2DModel):"))
        #expect(text.contains("scheduler (FlowMatchEulerDiscreteScheduler): no weights"))
        #expect(!text.contains("all_x_embedder"))   // tensors listed only on request
    }

    @Test func jsonReportParses() throws {
        let report = try InspectCommand.report(path: Fixtures.path("tiny-zimage/vae/diffusion_pytorch_model.safetensors"))
        let data = Data(report.json().utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let components = try #require(object["components"] as? [[String: Any]])
        let tensors = try #require(components.first?["tensors"] as? [[String: Any]])
        let conv = try #require(tensors.first { $0["name"] as? String == "decoder.conv_out.weight" })
        #expect(conv["dtype"] as? String == "BF16")
        #expect((conv["shape"] as? [Int])?.first == 3)
        #expect(conv["bytes"] as? Int == ((conv["shape"] as? [Int]) ?? []).reduce(2, *))
        let total = tensors.compactMap { $0["bytes"] as? Int }.reduce(0, +)
        #expect(components.first?["total_bytes"] as? Int == total)
    }

    @Test func corruptFileIsATypedError() {
        #expect(throws: SafetensorsError.self) {
            try InspectCommand.report(path: Fixtures.path("corrupt/overlapping_spans.safetensors"))
        }
        #expect(throws: CLIError.self) { try InspectCommand.report(path: "/no/such/path") }
    }

    @Test func argumentsParse() throws {
        let command = try ZImageCommand.parseAsRoot(["inspect", "--json", "model"])
        #expect(command is InspectCommand)
        #expect(throws: (any Error).self) { try ZImageCommand.parseAsRoot(["inspect"]) }
    }
}

/// `inspect` names the layout it detects and what loading does with it (issue 11 item 5).
@Suite struct InspectLayoutTests {
    @Test func layoutsAreNamed() throws {
        func layout(_ path: String) throws -> String? { try InspectCommand.report(path: Fixtures.path(path)).components.first?.layout }
        #expect(try layout("layouts/comfyui/diffusion_models/tiny_zimage.safetensors")?
            .hasPrefix("ComfyUI (Lumina2/NextDiT) transformer: keys renamed") == true)
        #expect(try layout("layouts/comfyui/vae/ae.safetensors")?.hasPrefix("BFL/LDM VAE") == true)
        #expect(try layout("layouts/comfyui/text_encoders/qwen_3_4b.safetensors")?.contains("Qwen3ForCausalLM") == true)
        #expect(try layout("layouts/tiny-zimage-tf5/text_encoder/model.safetensors")?.contains("prefix is added") == true)
        #expect(try layout("tiny-zimage/vae/diffusion_pytorch_model.safetensors") == "diffusers VAE: loaded as it is")
        let report = try InspectCommand.report(path: Fixtures.path("tiny-zimage"), listTensors: false)
        #expect(report.components.first { $0.name == "transformer" }?.layout == "diffusers transformer: loaded as it is")
        #expect(report.text().contains("  layout: diffusers transformer"))
        #expect(try layout("corrupt/valid.safetensors") == nil)
    }

    /// Quantised files: the container, each stored form and what loading does (issue 11 item 3).
    @Test func quantisedLayoutsAreNamed() throws {
        func layout(_ name: String) throws -> String {
            try InspectCommand.report(path: Fixtures.path("layouts/quantised/" + name)).components.first?.layout ?? ""
        }
        let q8 = try layout("tiny_zimage_Q8_0.gguf")
        #expect(q8.hasPrefix("ComfyUI (Lumina2/NextDiT) transformer"), "\(q8)")
        #expect(q8.contains("GGUF (arch lumina2): ") && q8.contains("Q8_0") && q8.contains("widened"), "\(q8)")
        #expect(try layout("tiny_zimage_BF16.gguf").contains(" BF16"))
        #expect(try layout("tiny_zimage_scaled_fp8.safetensors").contains("legacy scaled fp8"))
        #expect(try layout("tiny_zimage_comfy_quant.safetensors").contains("comfy_quant fp8"))
        let plain = try layout("tiny_zimage_fp8.safetensors")
        #expect(plain.contains("plain fp8 casts") && plain.contains("F8_E5M2") && plain.contains("F8_E4M3"), "\(plain)")
        let text = try InspectCommand.report(path: Fixtures.path("layouts/quantised/tiny_zimage_Q8_0.gguf")).text()
        let row = text.split(separator: "\n").first { $0.hasPrefix("  layers.0.attention.qkv.weight ") }
        #expect(row?.contains(" Q8_0 ") == true, "\(text)")
        #expect(text.contains("[F32 183.88 KiB, Q8_0 564.19 KiB]"), "\(text)")
        let valid = try InspectCommand.report(path: Fixtures.path("corrupt/valid.gguf")).components.first?.layout
        #expect(valid?.hasPrefix("GGUF (arch lumina2): ") == true)
    }
}
