import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// The text encoder's float16 guard (docs/notes/fp16.md): `o_proj` and `down_proj` ×2^16 (exact
/// in both dtypes) push the residual stream past 65504, as a language model's massive
/// activations do. Unguarded float16 features are not finite; guarded ones are finite and equal
/// the float32 features within float16's rounding.
@Suite struct TextEncoderFloat16Tests {
    let backend = CPUBackend()
    let weights: WeightSet
    let configuration: Qwen3Configuration
    let ids: [Int32] = [5, 17, 99, 3, 250, 41, 7, 600]

    /// The tiny encoder's checkpoint with the two projections that write the stream scaled,
    /// written once to a temporary file.
    init() throws {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        configuration = try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder"))
        let original = try model.weights(of: "text_encoder"), host = CPUBackend()
        let entries = try original.keys.map { key in
            let tensor = try original.tensor(key, on: host, as: .float32)
            let scaled = key.hasSuffix("o_proj.weight") || key.hasSuffix("down_proj.weight")
            return try SafetensorsWriter.Entry(name: key, values: tensor.affine(scale: scaled ? 0x1p16 : 1).toFloats(),
                                               shape: tensor.shape)
        }
        let path = NSTemporaryDirectory() + "zimage-te-fp16-\(UUID().uuidString).safetensors"
        try SafetensorsWriter.write(entries, to: path)
        weights = try WeightSet(shards: [SafetensorsFile(path: path)])
        try? FileManager.default.removeItem(atPath: path)
    }

    func features(_ dtype: DType, guarded: Bool = true) throws -> [Float] {
        let encoder = try Qwen3TextEncoder(configuration: configuration, weights: weights, backend: backend, dtype: dtype)
        encoder.guardsFloat16Overflow = guarded
        return try encoder.encode(ids: ids, activationDType: dtype).toFloats()
    }

    /// The bound, as Float16OverflowTests': about n = 33 float16 roundings on the way (per layer:
    /// the two norms' outputs, q/k/v, the q/k norms and RoPE, the attention output, gate/up, and
    /// the 7 projections' weights: 16, over 2 layers; the embedding), so √n·u with u = 2⁻¹¹.
    static let bound = Double(33).squareRoot() * 0x1p-11

    @Test func guardedFloat16MatchesFloat32() throws {
        let reference = try features(.float32)
        #expect(reference.contains { abs($0) > 65504 }, "the scaled stream does not leave float16's range")
        let ours = try features(.float16)
        #expect(ours.allSatisfy { $0.isFinite })
        let error = relativeError(ours, reference)
        #expect(error < Self.bound, "relative error \(error) against float32 (bound \(Self.bound))")
    }

    @Test func unguardedFloat16Overflows() throws {
        #expect(try features(.float16, guarded: false).contains { !$0.isFinite })
    }
}
