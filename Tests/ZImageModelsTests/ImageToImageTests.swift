import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// The VAE encoder against `AutoencoderKL.encode`, img2img against `ZImageImg2ImgPipeline` and
/// inpainting against `ZImageInpaintPipeline` (diffusers 0.42.1, float32, CPU generators;
/// tools/fixtures/make_edit_fixtures.py). Bounds: encoder and per-step latents within 1e-4
/// relative error, pixels within 2 (99.5 % within 1), as for text to image.
@Suite(.serialized) struct ImageToImageTests {
    let pipeline: ZImagePipeline
    let backend = CPUBackend()

    init() throws {
        pipeline = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend, precision: .float32)
    }

    static func png(_ name: String) throws -> RGBImage {
        try PNGDecoder.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/\(name)"))))).image
    }

    /// A grey PNG's first channel (grey expanded to RGB by the decoder: R = G = B = L).
    static func mask() throws -> [UInt8] {
        let image = try png("mask.png")
        return (0..<(image.width * image.height)).map { image.pixels[$0 * 3] }
    }

    @Test func encoderMatchesAutoencoderKLEncode() throws {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/vae_encode.safetensors"))
        let image = try Self.png("init.png")
        let x = try pipeline.pixels(image)
        #expect(try x.toFloats() == golden.tensor("image", on: backend).toFloats(), "preprocess differs")
        let encoder = try #require(pipeline.encoder)
        let moments = try encoder.moments(x)
        #expect(moments.shape == [1, 32, 8, 8])
        let error = relativeError(try moments.toFloats(), try golden.tensor("moments", on: backend).toFloats())
        #expect(error < 1e-4, "moments: relative error \(error)")
        // latent_dist.sample(Generator(42)), then (z − shift)·scale.
        var generator = TorchGenerator(seed: 42)
        let latents = try pipeline.imageLatents(image, generator: &generator)
        let sample = try golden.tensor("sample_42", on: backend).toFloats().map { ($0 - 0.1159) * 0.3611 }
        let sampleError = relativeError(latents, sample)
        #expect(sampleError < 1e-4, "sample: relative error \(sampleError)")
    }

    /// `generate` end to end: the pixels, the steps reported and the infotext.
    func run(_ fixture: String, mask: [UInt8]?, strength: Double, stepsRun: Int) throws {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/\(fixture).safetensors"))
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.seed, parameters.strength) = (64, 64, 42, strength)
        var seen = 0
        let images = try pipeline.generate(parameters, initImage: InitImage(image: try Self.png("init.png"), mask: mask)) {
            if $0.stage == .denoising { seen += 1 }
            #expect($0.steps == stepsRun)
            return true
        }
        #expect(seen == stepsRun)
        let expectedPixels = try golden.tensor("image_uint8", on: backend).toBytes()
        let differences = zip(images[0].image.pixels, expectedPixels).map { abs(Int($0) - Int($1)) }
        #expect(differences.count == expectedPixels.count)
        #expect((differences.max() ?? 99) <= 2, "\(fixture): a pixel is off by \(differences.max() ?? 99)")
        let within1 = differences.filter { $0 <= 1 }.count
        #expect(Double(within1) / Double(expectedPixels.count) >= 0.995, "\(fixture): \(within1) within 1")
        #expect(images[0].infotext.contains("Denoising strength: \(Infotext.format(Float(strength)))"))
    }

    /// The latents along the way: start latent and every step within 1e-4.
    func runLatents(_ fixture: String, mask: [UInt8]?, strength: Double) throws {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/\(fixture).safetensors"))
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.seed, parameters.strength) = (64, 64, 42, strength)
        let start = try pipeline.editStart(InitImage(image: try Self.png("init.png"), mask: mask),
                                                   parameters: parameters, seed: 42)
        let initError = relativeError(try start.latent.toFloats(), try golden.tensor("latents_init", on: backend).toFloats())
        #expect(initError < 1e-4, "\(fixture) start latent: \(initError)")
        let caption = try pipeline.transformer.prepareCaption(pipeline.encodePrompt(parameters.prompt).features,
                                                              activationDType: .float32)
        var count = 0
        _ = try pipeline.denoise(start.latent, caption: caption, negative: nil, parameters: parameters,
                                 firstStep: start.firstStep, blend: start.blend) { index, latents in
            let expected = try golden.tensor("latents_step_\(index)", on: backend).toFloats()
            let error = relativeError(try latents.toFloats(), expected)
            #expect(error < 1e-4, "\(fixture) step \(index): relative error \(error)")
            count += 1
            return true
        }
        #expect(golden.names.filter { $0.hasPrefix("latents_step_") }.count == count)
    }

    @Test func img2imgMatchesZImageImg2ImgPipeline() throws {
        #expect(ZImagePipeline.firstStep(steps: 8, strength: 0.6) == 3)
        try runLatents("pipeline_img2img", mask: nil, strength: 0.6)
        try run("pipeline_img2img", mask: nil, strength: 0.6, stepsRun: 5)
    }

    @Test func inpaintingMatchesZImageInpaintPipeline() throws {
        try runLatents("pipeline_inpaint", mask: Self.mask(), strength: 0.75)
        try run("pipeline_inpaint", mask: Self.mask(), strength: 0.75, stepsRun: 6)
        try runLatents("pipeline_inpaint_full", mask: Self.mask(), strength: 1)
        try run("pipeline_inpaint_full", mask: Self.mask(), strength: 1, stepsRun: 8)
    }

    @Test func badEditInputsAreRefusedByName() throws {
        var parameters = GenerationParameters(prompt: "fox")
        (parameters.width, parameters.height, parameters.seed) = (64, 64, 1)
        let image = try Self.png("init.png")
        parameters.strength = 0
        #expect(throws: GenerationError.invalidParameter("strength", "0.0 leaves no step of 8 to run")) {
            try pipeline.generate(parameters, initImage: InitImage(image: image))
        }
        parameters.strength = 1.5
        #expect(throws: GenerationError.self) { try pipeline.generate(parameters, initImage: InitImage(image: image)) }
        parameters.strength = 0.5
        parameters.width = 96
        #expect(throws: GenerationError.invalidParameter("init_image", "is 64x64, the generation 96x64")) {
            try pipeline.generate(parameters, initImage: InitImage(image: image))
        }
    }
}
