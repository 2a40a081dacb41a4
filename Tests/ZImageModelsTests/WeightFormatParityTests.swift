import Crypto
import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// The tiny DiT and text encoder with quantised projections against diffusers / transformers run
/// on the same quantised-then-dequantised weights (Tests/Fixtures/weight-formats, written by
/// tools/fixtures/make_weight_formats.py), in float32.
///
/// Bounds: the quantised weights are checked **bit for bit** against the script's (SHA-256 of
/// the codes and scales of every quantised key). With equal weights, the rest is the f32 engine
/// against the f32 reference, so the bounds are the existing dense parity ones (TransformerTests,
/// TextEncoderTests: relative error < 1e-4), not loosened for quantisation, whose loss is in the
/// golden itself (int8 moves the DiT's output by 6e-3 and the encoder's by 1.2e-2 relative; a
/// scale per column instead of per row lands 8e-3 from the golden, truncation 1.3e-2; measured
/// here: int8 encoder ≤ 3.2e-7). Rounding ties never occur in these random weights: Int8Tests
/// checks half-to-even against torch on a crafted matrix.
/// FP8's GEMM also quantises its activations per row; the float-order differences between the
/// two engines (~1e-7) can flip the rounding of an activation code, a step of 1/16 of its value,
/// so the FP8 text encoder is held to 1e-3 (measured: ≤ 2.2e-7, and 8.3e-6 on the long prompt,
/// where such flips happen; FP8 itself moves the encoder 7e-2 from dense).
@Suite struct WeightFormatParityTests {
    let backend = CPUBackend()
    let model: ModelDirectory
    let golden: SafetensorsFile

    init() throws {
        model = try ModelDirectory(path: Fixtures.tinyModel)
        golden = try SafetensorsFile(path: Fixtures.path("weight-formats/golden.safetensors"))
    }

    var textConfiguration: Qwen3Configuration {
        get throws { try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder")) }
    }

    var transformerConfiguration: ZImageTransformerConfiguration {
        get throws {
            try ComponentConfiguration.decode(ZImageTransformerConfiguration.self, from: model.component("transformer"))
        }
    }

    /// SHA-256 over `keys` (sorted) of each weight quantised by the CPU backend: codes, then scales.
    func digest(_ weights: WeightSet, keys: [String], format: LinearWeightFormat) throws -> String {
        var hash = SHA256()
        for key in keys.sorted() {
            let weight = try LinearWeight(weights.tensor(key, on: backend), format: format)
            for tensor in weight.storageTensors { try tensor.toBytes().withUnsafeBytes { hash.update(bufferPointer: $0) } }
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    @Test func transformerInt8WeightsEqualTheScriptsBitForBit() throws {
        let c = try transformerConfiguration
        let keys = ZImageTransformer.parameterSpec(c, linearFormat: .int8).formats.filter { $0.value == .int8 }.map(\.key)
        #expect(Set(keys) == Set(ZImageTransformer.float8Keys(c)))
        let digest = try digest(model.weights(of: "transformer"), keys: keys, format: .int8)
        #expect(digest == golden.metadata["sha256.transformer.int8"])
    }

    @Test(arguments: [("int8", LinearWeightFormat.int8), ("fp8", .float8)])
    func textEncoderWeightsEqualTheScriptsBitForBit(name: String, format: LinearWeightFormat) throws {
        let configuration = try textConfiguration
        let spec = Qwen3TextEncoder.parameterSpec(configuration, linearFormat: format)
        let keys = spec.formats.filter { $0.value == format }.map(\.key)
        #expect(keys.count == 7 * (configuration.numHiddenLayers - 1))
        #expect(keys.allSatisfy { $0.hasSuffix("_proj.weight") })
        let weights = try Qwen3TextEncoder.canonicalKeys(model.weights(of: "text_encoder"), spec: spec)
        #expect(try digest(weights, keys: keys, format: format) == golden.metadata["sha256.text_encoder.\(name)"])
    }

    @Test func transformerInt8MatchesDiffusers() throws {
        let transformer = try ZImageTransformer(configuration: transformerConfiguration,
                                                quantisedFrom: model.weights(of: "transformer"), linearFormat: .int8,
                                                backend: backend, dtype: nil)
        #expect(transformer.linearFormat == .int8 && !transformer.hasDenseWeights)
        let stages = try SafetensorsFile(path: Fixtures.path("stages/transformer.safetensors"))
        let caption = try transformer.prepareCaption(stages.tensor("cap_feats", on: backend), activationDType: .float32)
        let out = try transformer(stages.tensor("x", on: backend), t: stages.tensor("t", on: backend).toFloats()[0],
                                  caption: caption)
        let error = try relativeError(out, golden.tensor("transformer.int8.out", on: backend))
        #expect(error < 1e-4, "int8 transformer: \(error)")
    }

    @Test(arguments: [(LinearWeightFormat.int8, 1e-4), (.float8, 1e-3)])
    func textEncoderMatchesTransformers(format: LinearWeightFormat, bound: Double) throws {
        let name = format == .int8 ? "int8" : "fp8"
        let encoder = try Qwen3TextEncoder(configuration: textConfiguration, weights: model.weights(of: "text_encoder"),
                                           backend: backend, linearFormat: format)
        #expect(encoder.linearFormat == format)
        let tokens = try SafetensorsFile(path: Fixtures.path("stages/tokens.safetensors"))
        for key in ["prompt", "negative", "empty", "long"] {
            let ids = try tokens.tensor("\(key).ids", on: backend).toFloats().map { Int32($0) }
            let hidden = try encoder.encode(ids: ids)
            let error = try relativeError(hidden, golden.tensor("text_encoder.\(name).\(key).prompt_embeds", on: backend))
            #expect(error < bound, "\(name) text encoder, \(key): \(error)")
        }
    }
}
