import ZImageTensor
import ZImageWeights

/// The encoder half of diffusers' `AutoencoderKL` (0.42.1 `Encoder`, FLUX AE layout): conv_in →
/// down blocks (ResNets, then a stride-2 3×3 conv after zero padding right and bottom) → mid block
/// (ResNet, single-head self-attention, ResNet) → GroupNorm → SiLU → conv_out to 2·latent
/// channels, the moments (mean, log-variance) of `DiagonalGaussianDistribution`. Same file as
/// the decoder; its keys are the ones under `encoder.`.
public final class VAEEncoder {
    public let configuration: AutoencoderConfiguration
    private let modules: Modules<LoadedParameters>

    /// The encoder's layers, built from `Source`: each declares its keys (`encoder.…`) as it is built.
    struct Modules<Source: ParameterSource> {
        let convIn: VAEConv<Source>
        let downBlocks: [VAESampleBlock<Source>]
        let mid: VAEMidBlock<Source>
        let normOut: VAEGroupNorm<Source>, convOut: VAEConv<Source>

        init(_ source: Source, _ c: AutoencoderConfiguration) throws(Source.Failure) {
            let groups = c.normNumGroups, channels = c.blockOutChannels, top = channels[channels.count - 1]
            convIn = try VAEConv(source, "encoder.conv_in", input: c.inChannels, output: channels[0])
            var blocks: [VAESampleBlock<Source>] = []
            var previous = channels[0]
            for (i, output) in channels.enumerated() {
                blocks.append(try VAESampleBlock(source, "encoder.down_blocks.\(i)", input: previous, output: output,
                                                 count: c.layersPerBlock, groups: groups,
                                                 resampler: i < channels.count - 1 ? "downsamplers" : nil,
                                                 resamplePadding: 0))
                previous = output
            }
            downBlocks = blocks
            mid = try VAEMidBlock(source, "encoder.mid_block", channels: top, groups: groups,
                                  attention: c.midBlockAddAttention ?? true)
            normOut = try VAEGroupNorm(source, "encoder.conv_norm_out", channels: top, groups: groups)
            convOut = try VAEConv(source, "encoder.conv_out", input: top, output: 2 * c.latentChannels)
        }
    }

    /// The encoder's parameters, as its layers declare them; everything else in the file
    /// (decoder, quant convs) is ignored.
    public static func parameterSpec(_ c: AutoencoderConfiguration) -> ParameterSpec {
        let declarations = ParameterDeclarations()
        _ = Modules(declarations, c)
        return declarations.spec(ignoring: ["decoder.", "quant_conv.", "post_quant_conv."])
    }

    /// Whether `weights` hold an encoder under diffusers names (BFL-named files keep their own
    /// encoder names, which this port does not rename yet).
    public static func isPresent(in weights: WeightSet) -> Bool {
        weights.entries["encoder.down_blocks.0.resnets.0.norm1.weight"] != nil
    }

    public init(configuration c: AutoencoderConfiguration, weights: WeightSet, backend: any Backend,
                dtype: DType? = nil) throws {
        guard weights.entries["quant_conv.weight"] == nil else {
            throw WeightLoadingError.malformedJSON(path: "vae/config.json", detail: "quant_conv is not supported")
        }
        configuration = c
        let store = try Self.parameterSpec(c).load(from: weights, component: "vae encoder", on: backend, dtype: dtype)
        modules = try Modules(LoadedParameters(store), c)
    }

    /// The moments `[N, 2·latent, H/f, W/f]` (mean, then log-variance) of pixels `x` `[N, 3, H, W]`
    /// in [−1, 1]; H and W must be multiples of the down-sampling factor f.
    public func moments(_ x: Tensor) throws -> Tensor {
        let factor = 1 << (configuration.blockOutChannels.count - 1)
        guard x.shape.rank == 4, x.shape[1] == configuration.inChannels, x.shape[2] % factor == 0,
              x.shape[3] % factor == 0 else {
            throw TensorError.shapeMismatch(op: "vae encode",
                                            detail: "\(x.shape), expected [N, 3, H, W] with H, W multiples of \(factor)")
        }
        var h = try modules.convIn(x)
        for block in modules.downBlocks {
            for resnet in block.resnets { h = try resnet(h) }
            if let downsample = block.resample { h = try downsample.stride2(Self.padRightBottom(h)) }
        }
        return try modules.convOut(modules.normOut.silu(modules.mid(h)))
    }

    /// `F.pad(x, (0, 1, 0, 1))`: one zero column on the right, one zero row at the bottom.
    static func padRightBottom(_ x: Tensor) throws -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let backend = x.backend
        let column = try backend.tensor([Float](repeating: 0, count: n * c * h), shape: [n, c, h, 1], dtype: x.dtype)
        let wider = try Tensor.concat([x, column], axis: 3)
        let row = try backend.tensor([Float](repeating: 0, count: n * c * (w + 1)), shape: [n, c, 1, w + 1],
                                     dtype: x.dtype)
        return try Tensor.concat([wider, row], axis: 2)
    }
}
