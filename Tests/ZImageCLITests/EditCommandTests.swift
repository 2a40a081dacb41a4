import Foundation
import Testing
import ZImageCLI
import ZImageCPU
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// `generate --init-image --strength --mask` on the tiny model against the diffusers goldens.
@Suite(.serialized) struct EditCommandTests {
    func generate(_ extra: [String], golden fixture: String) throws -> String {
        let output = NSTemporaryDirectory() + "zimage-edit-cli-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        var command = try GenerateCommand.parse([
            "--model", Fixtures.tinyModel, "--prompt", "a red fox in the snow", "--seed", "42", "--device", "cpu",
            "--output", output, "--init-image", Fixtures.path("images/init.png"),
        ] + extra)
        try command.run()
        let png = try #require(try FileManager.default.contentsOfDirectory(atPath: output).first { $0.hasSuffix(".png") })
        let decoded = try PNGDecoder.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: output + "/" + png))))
        #expect(decoded.image.width == 64 && decoded.image.height == 64)
        let golden = try SafetensorsFile(path: Fixtures.path("stages/\(fixture).safetensors"))
            .tensor("image_uint8", on: CPUBackend()).toBytes()
        let worst = zip(decoded.image.pixels, golden).map { abs(Int($0) - Int($1)) }.max() ?? 99
        #expect(worst <= 2, "\(fixture): off by \(worst)")
        return decoded.text["parameters"] ?? ""
    }

    @Test func img2imgTakesTheImageSizeAndTheDefaultStrength() throws {
        let text = try generate([], golden: "pipeline_img2img")
        #expect(text.contains("Size: 64x64") && text.contains("Denoising strength: 0.6"), "\(text)")
    }

    @Test func inpaintingWithAMask() throws {
        let text = try generate(["--mask", Fixtures.path("images/mask.png"), "--strength", "0.75"],
                                golden: "pipeline_inpaint")
        #expect(text.contains("Denoising strength: 0.75"), "\(text)")
        _ = try generate(["--mask", Fixtures.path("images/mask.png")], golden: "pipeline_inpaint_full")
    }

    @Test func badEditFlagsAreRefused() throws {
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--prompt", "x", "--mask", "m.png"]) }
        #expect(throws: (any Error).self) {
            try GenerateCommand.parse(["--prompt", "x", "--init-image", "i.png", "--strength", "1.5"])
        }
        var command = try GenerateCommand.parse([
            "--model", Fixtures.tinyModel, "--prompt", "x", "--device", "cpu", "--output", NSTemporaryDirectory(),
            "--init-image", Fixtures.path("lora/lokr.safetensors"),
        ])
        do {
            try command.run()
            Issue.record("a safetensors file was read as an init image")
        } catch {
            #expect("\(error)" == "--init-image is not a PNG image", "\(error)")
        }
    }
}
