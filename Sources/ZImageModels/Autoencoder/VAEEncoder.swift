import ZImageTensor
import ZImageWeights

/// The encoder half of diffusers' `AutoencoderKL` (0.42.1 `Encoder`, FLUX AE layout): conv_in →
/// down blocks (ResNets, then a stride-2 3×3 conv after zero padding right and bottom) → mid block
/// (ResNet, single-head self-attention, ResNet) → GroupNorm → SiLU → conv_out to 2·latent
/// channels, the moments (mean, log-variance) of `DiagonalGaussianDistribution`. Same file as
/// the decoder; its keys are the ones under `encoder.`.
public final class VAEEncoder {
    public let configuration: AutoencoderConfiguration
    private let convIn: VAEDecoder.Conv, convOut: VAEDecoder.Conv, normOut: VAEDecoder.GroupNorm
    private let downBlocks: [(resnets: [VAEDecoder.ResnetBlock], downsample: VAEDecoder.Conv?)]
    private let midResnets: [VAEDecoder.ResnetBlock]
    private let midAttention: VAEDecoder.AttentionBlock?

    /// The encoder's parameters; everything else in the file (decoder, quant convs) is ignored.
    public static func parameterSpec(_ c: AutoencoderConfiguration) -> ParameterSpec {
        var shapes: [String: Shape] = [:]
        func conv(_ prefix: String, _ input: Int, _ output: Int, kernel: Int = 3) {
            shapes[prefix + ".weight"] = [output, input, kernel, kernel]
            shapes[prefix + ".bias"] = [output]
        }
        func norm(_ prefix: String, _ channels: Int) {
            shapes[prefix + ".weight"] = [channels]
            shapes[prefix + ".bias"] = [channels]
        }
        func resnet(_ prefix: String, _ input: Int, _ output: Int) {
            norm(prefix + ".norm1", input)
            conv(prefix + ".conv1", input, output)
            norm(prefix + ".norm2", output)
            conv(prefix + ".conv2", output, output)
            if input != output { conv(prefix + ".conv_shortcut", input, output, kernel: 1) }
        }
        let channels = c.blockOutChannels, top = channels[channels.count - 1]
        conv("encoder.conv_in", c.inChannels, channels[0])
        var previous = channels[0]
        for (i, output) in channels.enumerated() {
            for j in 0..<c.layersPerBlock {
                resnet("encoder.down_blocks.\(i).resnets.\(j)", j == 0 ? previous : output, output)
            }
            if i < channels.count - 1 { conv("encoder.down_blocks.\(i).downsamplers.0.conv", output, output) }
            previous = output
        }
        resnet("encoder.mid_block.resnets.0", top, top)
        resnet("encoder.mid_block.resnets.1", top, top)
        if c.midBlockAddAttention ?? true {
            let prefix = "encoder.mid_block.attentions.0"
            norm(prefix + ".group_norm", top)
            for name in ["to_q", "to_k", "to_v", "to_out.0"] {
                shapes[prefix + ".\(name).weight"] = [top, top]
                shapes[prefix + ".\(name).bias"] = [top]
            }
        }
        norm("encoder.conv_norm_out", top)
        conv("encoder.conv_out", top, 2 * c.latentChannels)
        return ParameterSpec(shapes: shapes, ignoredPrefixes: ["decoder.", "quant_conv.", "post_quant_conv."])
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
        let groups = c.normNumGroups, channels = c.blockOutChannels
        convIn = try VAEDecoder.Conv(store, "encoder.conv_in")
        var blocks: [(resnets: [VAEDecoder.ResnetBlock], downsample: VAEDecoder.Conv?)] = []
        var previous = channels[0]
        for (i, output) in channels.enumerated() {
            let resnets = try (0..<c.layersPerBlock).map { j in
                try VAEDecoder.ResnetBlock(store, "encoder.down_blocks.\(i).resnets.\(j)", groups: groups,
                                           hasShortcut: (j == 0 ? previous : output) != output)
            }
            let downsample = i < channels.count - 1
                ? try VAEDecoder.Conv(store, "encoder.down_blocks.\(i).downsamplers.0.conv", padding: 0) : nil
            blocks.append((resnets, downsample))
            previous = output
        }
        downBlocks = blocks
        midResnets = try (0..<2).map {
            try VAEDecoder.ResnetBlock(store, "encoder.mid_block.resnets.\($0)", groups: groups, hasShortcut: false)
        }
        midAttention = (c.midBlockAddAttention ?? true)
            ? try VAEDecoder.AttentionBlock(store, "encoder.mid_block.attentions.0", groups: groups) : nil
        normOut = try VAEDecoder.GroupNorm(store, "encoder.conv_norm_out", groups: groups)
        convOut = try VAEDecoder.Conv(store, "encoder.conv_out")
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
        var h = try convIn(x)
        for block in downBlocks {
            for resnet in block.resnets { h = try resnet(h) }
            if let downsample = block.downsample { h = try downsample.stride2(Self.padRightBottom(h)) }
        }
        h = try midResnets[0](h)
        if let midAttention { h = try midAttention(h) }
        h = try midResnets[1](h)
        return try convOut(normOut.silu(h))
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

extension VAEDecoder.Conv {
    /// The convolution with stride 2 (the encoder's down-samplers).
    func stride2(_ x: Tensor) throws -> Tensor { try x.conv2d(weight: weight, bias: bias, stride: 2, padding: padding) }
}
