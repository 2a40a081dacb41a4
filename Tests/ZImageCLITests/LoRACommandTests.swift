import Foundation
import Testing
import ZImageCLI
import ZImageCPU
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// `generate --lora` and `zimage loras` on the tiny model with the fixture LoRAs.
@Suite(.serialized) struct LoRACommandTests {
    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "zimage-lora-cli-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return GenerateCommand.message(for: error) }
        return ""
    }

    @Test func strengthsParseAfterTheLastColon() {
        #expect(LoRAReference(argument: "a.safetensors:0.8") == LoRAReference(name: "a.safetensors", strength: 0.8))
        #expect(LoRAReference(argument: "dir:x/a.safetensors") == LoRAReference(name: "dir:x/a.safetensors"))
        #expect(LoRAReference(argument: "detail:-1.5") == LoRAReference(name: "detail", strength: -1.5))
        let parsed = PromptLoRAs.parse("a fox <lora:kohya:0.8>, snow <lyco:lokr:1:0.5> <lora:x:y> <hypernet:h:1>")
        #expect(parsed.prompt == "a fox , snow   <hypernet:h:1>")
        #expect(parsed.loras == [LoRAReference(name: "kohya", strength: 0.8), LoRAReference(name: "lokr", strength: 0.5)])
        #expect(parsed.invalid == ["<lora:x:y>"])
    }

    @Test func generateRecordsTheLoRAsInTheInfotext() throws {
        let output = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: output) }
        var command = try GenerateCommand.parse([
            "--model", Fixtures.tinyModel, "--prompt", "<lora:lokr:0.5>a red fox in the snow", "--width", "64",
            "--height", "64", "--seed", "42", "--device", "cpu", "--output", output,
            "--lora", Fixtures.path("lora/kohya.safetensors") + ":0.8", "--lora-dir", Fixtures.path("lora"),
        ])
        try command.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: output)
        let png = try #require(files.first { $0.hasSuffix(".png") })
        let decoded = try PNGDecoder.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: output + "/" + png))))
        let text = try #require(decoded.text["parameters"])
        #expect(text.hasPrefix("<lora:lokr:0.5>a red fox in the snow <lora:kohya:0.8>\n"), "\(text)")
        #expect(text.contains(#"Lora hashes: "kohya: 07f54635f4b5, lokr: "#), "\(text)")
        // The same pixels as diffusers with the two LoRAs (the parity test's golden, within its bound):
        // the tag is cut from the prompt before the text encoder, as A1111 cuts it.
        let golden = try SafetensorsFile(path: Fixtures.path("stages/pipeline_lora_two.safetensors"))
            .tensor("image_uint8", on: CPUBackend()).toBytes()
        let worst = zip(decoded.image.pixels, golden).map { abs(Int($0) - Int($1)) }.max() ?? 99
        #expect(worst <= 2)
    }

    @Test func badLoRAsAreRefusedWithTheFileAndKey() throws {
        let base = ["--model", Fixtures.tinyModel, "--prompt", "x", "--width", "64", "--height", "64", "--device", "cpu",
                    "--output", NSTemporaryDirectory()]
        var command = try GenerateCommand.parse(base + ["--lora", Fixtures.path("lora/unknown_key.safetensors")])
        var text = Self.message { try command.run() }
        #expect(text.contains("lora_unet_layers_0_attention_to_q.lora_mid.weight"), "\(text)")
        command = try GenerateCommand.parse(base + ["--lora", "no-such-lora", "--lora-dir", Fixtures.path("lora")])
        text = Self.message { try command.run() }
        #expect(text.hasPrefix("--lora no-such-lora: no such file"), "\(text)")
        command = try GenerateCommand.parse(base + ["--lora", Fixtures.path("tiny-zimage/vae/diffusion_pytorch_model.safetensors")])
        text = Self.message { try command.run() }
        #expect(text.contains("not understood"), "\(text)")
    }
}
