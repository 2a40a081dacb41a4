import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport

/// `--precision fp16` end to end on the tiny model (CPU): the image is the float32 image (not
/// black, not NaN), and a transformer that overflows float16 gives the black image of other
/// Z-Image tools without the guard and the float32 image with it (docs/notes/fp16.md).
@Suite(.serialized) struct PipelineFloat16Tests {
    static func image(_ pipeline: ZImagePipeline) throws -> [UInt8] {
        var p = GenerationParameters(prompt: "a red fox")
        (p.width, p.height, p.steps, p.seed) = (64, 64, 2, 7)
        return try #require(pipeline.generate(p).first).image.pixels
    }

    /// The pipeline of `base` with `transformer` in it.
    static func pipeline(_ base: ZImagePipeline, transformer: ZImageTransformer) throws -> ZImagePipeline {
        ZImagePipeline(backend: base.backend, precision: base.precision, tokenizer: base.tokenizer,
                       textEncoder: try #require(base.textEncoder), transformer: transformer, decoder: base.decoder,
                       shift: base.shift, modelName: base.modelName)
    }

    /// The largest difference of two images' pixels, in levels.
    static func worstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    @Test func theFloat16ImageIsTheFloat32Image() throws {
        let half = try Self.image(ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(),
                                                 precision: .float16))
        let full = try Self.image(ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(),
                                                 precision: .float32))
        #expect(half.contains { $0 != 0 }, "the float16 image is black")
        let worst = Self.worstDifference(half, full)
        #expect(worst <= Self.worstPixel, "a pixel is \(worst) levels off the float32 image")
    }

    @Test func anOverflowingTransformerIsBlackWithoutTheGuardAndRightWithIt() throws {
        let backend = CPUBackend()
        let half = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend, precision: .float16)
        let full = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend, precision: .float32)
        let site = Float16OverflowTests.Site.feedForwardProduct
        let scaledHalf = try Float16OverflowTests.transformer(.float16, scaling: site, on: backend)
        let guarded = try Self.image(Self.pipeline(half, transformer: scaledHalf))
        let reference = try Self.image(Self.pipeline(full, transformer:
            Float16OverflowTests.transformer(.float32, scaling: site, on: backend)))
        scaledHalf.guardsFloat16Overflow = false
        let unguarded = try Self.image(Self.pipeline(half, transformer: scaledHalf))
        #expect(unguarded.allSatisfy { $0 == 0 }, "without the guard the image is not the black NaN image")
        #expect(guarded.contains { $0 != 0 }, "with the guard the image is black")
        let worst = Self.worstDifference(guarded, reference)
        #expect(worst <= Self.worstPixel, "a pixel is \(worst) levels off the float32 image")
    }

    /// The pixel bound: the VAE runs in float32 for fp16, so the images differ only through the
    /// latents, whose float16 error is the transformer's (relative ≲ √n·u ≈ 4.2e-3,
    /// Float16OverflowTests.bound) and the text encoder's (≲ 2.8e-3). Through the tiny VAE's unit
    /// gain that moves a pixel value in [−1, 1] by about 4e-3 of its size, below the 1/127.5 of
    /// one level, and a change under one level moves a rounded pixel by at most 1.
    static let worstPixel = 1
}
