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

    /// Largest pixel difference, and the share of pixels more than 1 level apart.
    static func difference(_ a: [UInt8], _ b: [UInt8]) -> (worst: Int, overOne: Double) {
        let differences = zip(a, b).map { abs(Int($0) - Int($1)) }
        return (differences.max() ?? 0, Double(differences.filter { $0 > 1 }.count) / Double(max(differences.count, 1)))
    }

    @Test func theFloat16ImageIsTheFloat32Image() throws {
        let half = try Self.image(ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(),
                                                 precision: .float16))
        let full = try Self.image(ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend(),
                                                 precision: .float32))
        #expect(half.contains { $0 != 0 }, "the float16 image is black")
        let (worst, overOne) = Self.difference(half, full)
        print("fp16 vs fp32 image: worst \(worst), over one \(overOne)")
        #expect(worst <= Self.worstPixel && overOne <= Self.pixelsOverOne, "worst \(worst), \(overOne) over 1 level")
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
        let (worst, overOne) = Self.difference(guarded, reference)
        print("overflowing fp16 vs fp32 image: worst \(worst), over one \(overOne)")
        #expect(worst <= Self.worstPixel && overOne <= Self.pixelsOverOne, "worst \(worst), \(overOne) over 1 level")
    }

    /// Pixel bounds: the latents differ from float32 by the transformer's float16 error
    /// (relative ≲ √n·u ≈ 4e-3, Float16OverflowTests.bound) and the text encoder's; the VAE
    /// runs in float32 and maps a latent error δ to about δ·(its gain) of the [−1, 1] range,
    /// 127.5 levels per unit. With latents of RMS ≈ 1 and a unit-gain tiny VAE that is ≈ 0.5
    /// levels typically: no pixel more than 2 levels off and at most 2 % more than 1.
    static let worstPixel = 2
    static let pixelsOverOne = 0.02
}
