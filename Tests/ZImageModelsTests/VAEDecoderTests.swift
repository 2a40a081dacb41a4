import Testing
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// The tiny VAE decoder against diffusers in float32 (stages/vae.safetensors).
@Suite struct VAEDecoderTests {
    let backend = CPUBackend()

    func decoder(scratch: Int? = nil) throws -> VAEDecoder {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        let configuration = try ComponentConfiguration.decode(AutoencoderConfiguration.self, from: model.component("vae"))
        let backend = scratch.map { CPUBackend(scratchElements: $0) } ?? self.backend
        return try VAEDecoder(configuration: configuration, weights: model.weights(of: "vae"), backend: backend)
    }

    @Test func decodeMatchesDiffusers() throws {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/vae.safetensors"))
        let out = try decoder().decode(golden.tensor("z", on: backend))
        let expected = try golden.tensor("out", on: backend)
        #expect(out.shape == [1, 3, 64, 64])
        let error = relativeError(try out.toFloats(), try expected.toFloats())
        #expect(error < 1e-4, "vae: \(error)")
    }

    /// Small scratch budgets split the convolutions and the mid attention into bands; same result.
    @Test func bandedDecodeMatches() throws {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/vae.safetensors"))
        let out = try decoder(scratch: 4096).decode(golden.tensor("z", on: CPUBackend(scratchElements: 4096)))
        #expect(relativeError(try out.toFloats(), try golden.tensor("out", on: backend).toFloats()) < 1e-4)
    }

    @Test func encoderWeightsAreIgnoredNotUnexpected() throws {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        let weights = try model.weights(of: "vae")
        let configuration = try ComponentConfiguration.decode(AutoencoderConfiguration.self, from: model.component("vae"))
        #expect(weights.keys.contains { $0.hasPrefix("encoder.") })
        try VAEDecoder.parameterSpec(configuration).verify(weights, component: "vae")
        #expect(VAEDecoder.parameterSpec(configuration).shapes.keys.allSatisfy { $0.hasPrefix("decoder.") })
    }

    /// The real configuration's decoder has 49,545,475 parameters in 138 tensors:
    /// conv_in 2, mid ResNets 16, mid attention 10, up-block ResNets 96 + shortcuts 4, upsamplers 6,
    /// conv_norm_out 2, conv_out 2.
    @Test func realConfigurationHasTheCheckpointCount() {
        #expect(VAEDecoder.parameterSpec(.zImageTurbo).shapes.count == 138)
        let parameters = VAEDecoder.parameterSpec(.zImageTurbo).shapes.values.reduce(0) { $0 + $1.count }
        #expect(parameters == 49_545_475)
    }
}
