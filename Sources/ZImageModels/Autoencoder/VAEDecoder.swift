import ZImageTensor
import ZImageWeights

/// The decoder half of diffusers' `AutoencoderKL` (0.42.1 `Decoder`): conv_in → mid block (ResNet,
/// single-head self-attention, ResNet) → up blocks (ResNets, nearest 2× + 3×3 conv) → GroupNorm →
/// SiLU → conv_out. The encoder's weights are in the file but never loaded.
public final class VAEDecoder {
    public let configuration: AutoencoderConfiguration
    private let modules: Modules<LoadedParameters>

    /// The decoder's layers, built from `Source`: each declares its keys (`decoder.…`) as it is built.
    struct Modules<Source: ParameterSource> {
        let convIn: VAEConv<Source>, mid: VAEMidBlock<Source>
        let upBlocks: [VAESampleBlock<Source>]
        let normOut: VAEGroupNorm<Source>, convOut: VAEConv<Source>

        init(_ source: Source, _ c: AutoencoderConfiguration) throws(Source.Failure) {
            let groups = c.normNumGroups, channels = c.blockOutChannels, top = channels[channels.count - 1]
            convIn = try VAEConv(source, "decoder.conv_in", input: c.latentChannels, output: top)
            mid = try VAEMidBlock(source, "decoder.mid_block", channels: top, groups: groups,
                                  attention: c.midBlockAddAttention ?? true)
            var blocks: [VAESampleBlock<Source>] = []
            var previous = top
            for (i, output) in channels.reversed().enumerated() {
                blocks.append(try VAESampleBlock(source, "decoder.up_blocks.\(i)", input: previous, output: output,
                                                 count: c.layersPerBlock + 1, groups: groups,
                                                 resampler: i < channels.count - 1 ? "upsamplers" : nil,
                                                 resamplePadding: 1))
                previous = output
            }
            upBlocks = blocks
            normOut = try VAEGroupNorm(source, "decoder.conv_norm_out", channels: channels[0], groups: groups)
            convOut = try VAEConv(source, "decoder.conv_out", input: channels[0], output: c.outChannels)
        }
    }

    /// The decoder's parameters, as its layers declare them; everything under `encoder.` (and
    /// `quant_conv.`) is ignored.
    public static func parameterSpec(_ c: AutoencoderConfiguration) -> ParameterSpec {
        let declarations = ParameterDeclarations()
        _ = Modules(declarations, c)
        return declarations.spec(ignoring: ["encoder.", "quant_conv.", "post_quant_conv."])
    }

    public init(configuration c: AutoencoderConfiguration, weights: WeightSet, backend: any Backend,
                dtype: DType? = nil) throws {
        guard c.usePostQuantConv != true else {
            throw WeightLoadingError.malformedJSON(path: "vae/config.json", detail: "post_quant_conv is not supported")
        }
        configuration = c
        let store = try Self.parameterSpec(c).load(from: weights, component: "vae", on: backend, dtype: dtype)
        modules = try Modules(LoadedParameters(store), c)
    }

    /// Pixels `[N, 3, 8h, 8w]` (nominally in [−1, 1]) from decoder input `z` `[N, 16, h, w]`
    /// (already un-scaled: latents / scaling_factor + shift_factor).
    public func decode(_ z: Tensor) throws -> Tensor {
        guard z.shape.rank == 4, z.shape[1] == configuration.latentChannels else {
            throw TensorError.shapeMismatch(op: "vae decode", detail: "\(z.shape), expected [N, 16, h, w]")
        }
        var x = try modules.mid(modules.convIn(z))
        for block in modules.upBlocks {
            for resnet in block.resnets { x = try resnet(x) }
            if let upsample = block.resample { x = try upsample(x.upsampleNearest2x()) }
        }
        return try modules.convOut(modules.normOut.silu(x))
    }

    /// Undoes the latent scaling: latents / scaling_factor + shift_factor (a division, as the
    /// reference does, not a multiplication by the reciprocal).
    public func decoderInput(latents: Tensor) throws -> Tensor {
        let scale = try latents.backend.tensor([Float(configuration.scalingFactor)], shape: [], dtype: latents.dtype)
        return try (latents / scale).affine(scale: 1, shift: Float(configuration.shiftFactor ?? 0))
    }
}
