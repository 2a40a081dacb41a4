import Testing
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// The float16 overflow guard (docs/notes/fp16.md) on the tiny DiT: weights scaled by powers of
/// two (exact in float16 and float32) push one overflow site past 65504; without the guard the
/// float16 output is not finite (the NaN / black images of other Z-Image tools), with it the
/// output is finite and equals the float32 run of the same weights within float16's rounding.
@Suite struct Float16OverflowTests {
    let backend = CPUBackend()
    let golden: SafetensorsFile

    init() throws {
        golden = try SafetensorsFile(path: Fixtures.path("stages/transformer.safetensors"))
    }

    /// Where float16 overflows in a Z-Image block, and the weights that take the tiny model there.
    enum Site: String, CaseIterable, CustomTestStringConvertible {
        /// The residual stream: the image embedder writes it (×2^16: values ~6.5e4, past 65504).
        case residualStream
        /// The SwiGLU product `silu(w1 x) · w3 x` (w1 and w3 ×2^9 each: the product ×2^18).
        case feedForwardProduct
        /// The attention branch's `to_out` product (v ×2^9, `to_out` ×2^10: ×2^19).
        case attentionOutput

        var testDescription: String { rawValue }

        func factors(_ c: ZImageTransformerConfiguration) -> [String: Float] {
            let blocks = (0..<c.nRefinerLayers).flatMap { ["noise_refiner.\($0).", "context_refiner.\($0)."] }
                + (0..<c.nLayers).map { "layers.\($0)." }
            func everyBlock(_ suffix: String, _ factor: Float) -> [String: Float] {
                Dictionary(uniqueKeysWithValues: blocks.map { ($0 + suffix, factor) })
            }
            switch self {
            case .residualStream:
                return ["all_x_embedder.2-1.weight": 0x1p16, "all_x_embedder.2-1.bias": 0x1p16]
            case .feedForwardProduct:
                return everyBlock("feed_forward.w1.weight", 0x1p9).merging(everyBlock("feed_forward.w3.weight", 0x1p9)) { $1 }
            case .attentionOutput:
                return everyBlock("attention.to_v.weight", 0x1p9)
                    .merging(everyBlock("attention.to_out.0.weight", 0x1p10)) { $1 }
            }
        }
    }

    /// The tiny transformer with its weights in `dtype` and the site's weights scaled.
    static func transformer(_ dtype: DType, scaling site: Site, on backend: any Backend) throws -> ZImageTransformer {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        let configuration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                              from: model.component("transformer"))
        let store = try ZImageTransformer.parameterSpec(configuration)
            .load(from: model.weights(of: "transformer"), component: "transformer", on: backend, dtype: dtype)
        var tensors = store.tensors
        for (key, factor) in site.factors(configuration) {
            tensors[key] = try #require(tensors[key], "\(key)").affine(scale: factor)
        }
        return try ZImageTransformer(configuration: configuration,
                                     parameters: ParameterStore(component: store.component, tensors: tensors))
    }

    func transformer(_ dtype: DType, scaling site: Site) throws -> ZImageTransformer {
        try Self.transformer(dtype, scaling: site, on: backend)
    }

    /// The velocity for the golden inputs, in float32 values.
    func velocity(_ transformer: ZImageTransformer, _ dtype: DType) throws -> [Float] {
        let caption = try transformer.prepareCaption(golden.tensor("cap_feats", on: backend), activationDType: dtype)
        let latent = try golden.tensor("x", on: backend).cast(to: dtype)
        return try transformer(latent, t: golden.tensor("t", on: backend).toFloats()[0], caption: caption).toFloats()
    }

    /// The bound: the float16 path rounds a value to float16 at about n = 72 places on the way
    /// from the latent to the velocity (per block: the normed input, q/k/v, the q/k norm and
    /// RoPE, the attention output and its unit-RMS rows, `to_out`, the FFN input, w1/w3, the
    /// product's unit-RMS rows, w2, and the float16 weights of its 7 projections: ≈ 17, over the
    /// 4 blocks; the embedder's weights, the final layer's input, weights and output: 4). Each
    /// rounding is a relative error of at most u = 2⁻¹¹ (float16's unit roundoff), independent
    /// of the others, so their relative L2 sum is about √n·u = 4.2e-3 when no layer amplifies
    /// them (the tiny model's fan-in initialisation has unit gain).
    static let bound = Double(72).squareRoot() * 0x1p-11

    @Test(arguments: Site.allCases) func guardedFloat16MatchesFloat32(site: Site) throws {
        let reference = try velocity(transformer(.float32, scaling: site), .float32)
        #expect(reference.allSatisfy { $0.isFinite }, "the float32 run itself overflowed at \(site)")
        let guarded = try transformer(.float16, scaling: site)
        let ours = try velocity(guarded, .float16)
        #expect(ours.allSatisfy { $0.isFinite }, "\(site): guarded float16 output is not finite")
        let error = relativeError(ours, reference)
        #expect(error < Self.bound, "\(site): relative error \(error) against float32 (bound \(Self.bound))")
    }

    /// The same weights without the guard: the float16 output holds NaN or infinity, so the test
    /// above fails when the guard is taken out.
    @Test(arguments: Site.allCases) func unguardedFloat16Overflows(site: Site) throws {
        let unguarded = try transformer(.float16, scaling: site)
        unguarded.guardsFloat16Overflow = false
        let out = try velocity(unguarded, .float16)
        #expect(out.contains { !$0.isFinite }, "\(site): float16 without the guard stayed finite")
    }

    /// bf16 and f32 never take the float16 path: the switch changes nothing there.
    @Test(arguments: [DType.float32, .bfloat16]) func otherPrecisionsIgnoreTheSwitch(dtype: DType) throws {
        let model = try transformer(dtype, scaling: .feedForwardProduct)
        let on = try velocity(model, dtype)
        model.guardsFloat16Overflow = false
        let off = try velocity(model, dtype)
        #expect(on.map { $0.bitPattern } == off.map { $0.bitPattern })
    }
}
