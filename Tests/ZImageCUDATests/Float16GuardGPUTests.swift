import Testing
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// The GPU twin of ZImageModelsTests' Float16OverflowTests: the tiny DiT with weights scaled by
/// powers of two so float16 overflows (docs/notes/fp16.md), run in float16 on the CUDA backend
/// (its fused kernels are bf16-only, so the guard's mixed float32/float16 ops take the composed
/// references there) against float32 on the CPU. Skipped without a GPU.
@Suite(.serialized, .enabled(if: GPUForTests.available, "no CUDA GPU here: the float16 guard GPU tests are skipped"))
struct Float16GuardGPUTests {
    let cpu = CPUBackend()

    /// Key suffixes (in every block) or whole keys, and their power-of-two factors.
    static let sites: [String: [String: Float]] = [
        "feed-forward product and attention output": ["feed_forward.w1.weight": 0x1p9, "feed_forward.w3.weight": 0x1p9,
                                                      "attention.to_v.weight": 0x1p9, "attention.to_out.0.weight": 0x1p10],
        "residual stream": ["all_x_embedder.2-1.weight": 0x1p16, "all_x_embedder.2-1.bias": 0x1p16],
    ]

    func transformer(_ dtype: DType, _ site: String, on backend: any Backend) throws -> ZImageTransformer {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        let configuration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                              from: model.component("transformer"))
        let store = try ZImageTransformer.parameterSpec(configuration)
            .load(from: model.weights(of: "transformer"), component: "transformer", on: backend, dtype: dtype)
        let factors = try #require(Self.sites[site])
        var tensors = store.tensors
        for (key, tensor) in store.tensors {
            if let factor = factors.first(where: { key.hasSuffix($0.key) })?.value {
                tensors[key] = try tensor.affine(scale: factor)
            }
        }
        return try ZImageTransformer(configuration: configuration,
                                     parameters: ParameterStore(component: store.component, tensors: tensors))
    }

    func velocity(_ transformer: ZImageTransformer, _ dtype: DType, on backend: any Backend) throws -> [Float] {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/transformer.safetensors"))
        let caption = try transformer.prepareCaption(golden.tensor("cap_feats", on: backend), activationDType: dtype)
        let t = try golden.tensor("t", on: cpu).toFloats()[0]
        return try transformer(golden.tensor("x", on: backend).cast(to: dtype), t: t, caption: caption).toFloats()
    }

    @Test(arguments: sites.keys.sorted()) func guardedFloat16MatchesFloat32(site: String) throws {
        let gpu = try #require(GPUForTests.backend)
        let reference = try velocity(transformer(.float32, site, on: cpu), .float32, on: cpu)
        let model = try transformer(.float16, site, on: gpu)
        let ours = try velocity(model, .float16, on: gpu)
        #expect(ours.allSatisfy { $0.isFinite }, "\(site): guarded float16 on the GPU is not finite")
        // Float16OverflowTests.bound: √72 float16 roundings of u = 2⁻¹¹.
        let error = relativeError(ours, reference)
        #expect(error < Double(72).squareRoot() * 0x1p-11, "\(site): relative error \(error)")
        model.guardsFloat16Overflow = false
        #expect(try velocity(model, .float16, on: gpu).contains { !$0.isFinite }, "\(site): unguarded stayed finite")
    }
}
