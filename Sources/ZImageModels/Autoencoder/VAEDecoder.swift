import ZImageTensor
import ZImageWeights

/// The decoder half of diffusers' `AutoencoderKL` (spec §4): conv_in → mid block (ResNet,
/// single-head self-attention, ResNet) → up blocks (ResNets, nearest 2× + 3×3 conv) → GroupNorm →
/// SiLU → conv_out. The encoder's weights are in the file but never loaded.
public final class VAEDecoder {
    public let configuration: AutoencoderConfiguration
    private let convIn: Conv, convOut: Conv, normOut: GroupNorm
    private let midResnets: [ResnetBlock]
    private let midAttention: AttentionBlock?
    private let upBlocks: [(resnets: [ResnetBlock], upsample: Conv?)]

    struct Conv {
        let weight: Tensor, bias: Tensor, padding: Int
        init(_ store: ParameterStore, _ prefix: String, padding: Int = 1) throws {
            weight = try store[prefix + ".weight"]
            bias = try store[prefix + ".bias"]
            self.padding = padding
        }
        func callAsFunction(_ x: Tensor) throws -> Tensor { try x.conv2d(weight: weight, bias: bias, padding: padding) }
    }

    struct GroupNorm {
        let weight: Tensor, bias: Tensor, groups: Int
        init(_ store: ParameterStore, _ prefix: String, groups: Int) throws {
            weight = try store[prefix + ".weight"]
            bias = try store[prefix + ".bias"]
            self.groups = groups
        }
        func callAsFunction(_ x: Tensor) throws -> Tensor {
            try x.groupNorm(groups: groups, weight: weight, bias: bias, eps: 1e-6)
        }
        /// `silu(norm(x))` as one fused op.
        func silu(_ x: Tensor) throws -> Tensor {
            try x.groupNormSiLU(groups: groups, weight: weight, bias: bias, eps: 1e-6)
        }
    }

    struct ResnetBlock {
        let norm1: GroupNorm, conv1: Conv, norm2: GroupNorm, conv2: Conv, shortcut: Conv?
        init(_ store: ParameterStore, _ prefix: String, groups: Int, hasShortcut: Bool) throws {
            norm1 = try GroupNorm(store, prefix + ".norm1", groups: groups)
            conv1 = try Conv(store, prefix + ".conv1")
            norm2 = try GroupNorm(store, prefix + ".norm2", groups: groups)
            conv2 = try Conv(store, prefix + ".conv2")
            shortcut = hasShortcut ? try Conv(store, prefix + ".conv_shortcut", padding: 0) : nil
        }
        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let h = try conv2(norm2.silu(conv1(norm1.silu(x))))
            return try (shortcut?(x) ?? x) + h
        }
    }

    struct AttentionBlock {
        let norm: GroupNorm, q: Linear, k: Linear, v: Linear, out: Linear
        init(_ store: ParameterStore, _ prefix: String, groups: Int) throws {
            norm = try GroupNorm(store, prefix + ".group_norm", groups: groups)
            q = try Linear(store, prefix + ".to_q", bias: true)
            k = try Linear(store, prefix + ".to_k", bias: true)
            v = try Linear(store, prefix + ".to_v", bias: true)
            out = try Linear(store, prefix + ".to_out.0", bias: true)
        }
        /// One head over the H·W positions, residual added.
        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let tokens = try norm(x).reshaped([n, c, h * w]).permuted([0, 2, 1])
            let query = try q(tokens).reshaped([n, h * w, 1, c])
            let key = try k(tokens).reshaped([n, h * w, 1, c])
            let value = try v(tokens).reshaped([n, h * w, 1, c])
            let attended = try out(query.attention(key: key, value: value).reshaped([n, h * w, c]))
            return try attended.permuted([0, 2, 1]).reshaped([n, c, h, w]) + x
        }
    }

    /// The decoder's parameters; everything under `encoder.` (and `quant_conv.`) is ignored.
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
        conv("decoder.conv_in", c.latentChannels, top)
        resnet("decoder.mid_block.resnets.0", top, top)
        resnet("decoder.mid_block.resnets.1", top, top)
        if c.midBlockAddAttention ?? true {
            let prefix = "decoder.mid_block.attentions.0"
            norm(prefix + ".group_norm", top)
            for name in ["to_q", "to_k", "to_v", "to_out.0"] {
                shapes[prefix + ".\(name).weight"] = [top, top]
                shapes[prefix + ".\(name).bias"] = [top]
            }
        }
        var previous = top
        for (i, output) in channels.reversed().enumerated() {
            for j in 0...c.layersPerBlock {
                resnet("decoder.up_blocks.\(i).resnets.\(j)", j == 0 ? previous : output, output)
            }
            if i < channels.count - 1 { conv("decoder.up_blocks.\(i).upsamplers.0.conv", output, output) }
            previous = output
        }
        norm("decoder.conv_norm_out", channels[0])
        conv("decoder.conv_out", channels[0], c.outChannels)
        return ParameterSpec(shapes: shapes, ignoredPrefixes: ["encoder.", "quant_conv.", "post_quant_conv."])
    }

    public init(configuration c: AutoencoderConfiguration, weights: WeightSet, backend: any Backend,
                dtype: DType? = nil) throws {
        guard c.usePostQuantConv != true else {
            throw WeightLoadingError.malformedJSON(path: "vae/config.json", detail: "post_quant_conv is not supported")
        }
        configuration = c
        let store = try Self.parameterSpec(c).load(from: weights, component: "vae", on: backend, dtype: dtype)
        let groups = c.normNumGroups, channels = c.blockOutChannels
        convIn = try Conv(store, "decoder.conv_in")
        midResnets = try (0..<2).map {
            try ResnetBlock(store, "decoder.mid_block.resnets.\($0)", groups: groups, hasShortcut: false)
        }
        midAttention = (c.midBlockAddAttention ?? true)
            ? try AttentionBlock(store, "decoder.mid_block.attentions.0", groups: groups) : nil
        var blocks: [(resnets: [ResnetBlock], upsample: Conv?)] = []
        var previous = channels[channels.count - 1]
        for (i, output) in channels.reversed().enumerated() {
            let resnets = try (0...c.layersPerBlock).map { j in
                try ResnetBlock(store, "decoder.up_blocks.\(i).resnets.\(j)", groups: groups,
                                hasShortcut: (j == 0 ? previous : output) != output)
            }
            let upsample = i < channels.count - 1 ? try Conv(store, "decoder.up_blocks.\(i).upsamplers.0.conv") : nil
            blocks.append((resnets, upsample))
            previous = output
        }
        upBlocks = blocks
        normOut = try GroupNorm(store, "decoder.conv_norm_out", groups: groups)
        convOut = try Conv(store, "decoder.conv_out")
    }

    /// Pixels `[N, 3, 8h, 8w]` (nominally in [−1, 1]) from decoder input `z` `[N, 16, h, w]`
    /// (already un-scaled: latents / scaling_factor + shift_factor).
    public func decode(_ z: Tensor) throws -> Tensor {
        guard z.shape.rank == 4, z.shape[1] == configuration.latentChannels else {
            throw TensorError.shapeMismatch(op: "vae decode", detail: "\(z.shape), expected [N, 16, h, w]")
        }
        var x = try convIn(z)
        x = try midResnets[0](x)
        if let midAttention { x = try midAttention(x) }
        x = try midResnets[1](x)
        for block in upBlocks {
            for resnet in block.resnets { x = try resnet(x) }
            if let upsample = block.upsample { x = try upsample(x.upsampleNearest2x()) }
        }
        return try convOut(normOut.silu(x))
    }

    /// Undoes the latent scaling: latents / scaling_factor + shift_factor (a division, as the
    /// reference does, not a multiplication by the reciprocal).
    public func decoderInput(latents: Tensor) throws -> Tensor {
        let scale = try latents.backend.tensor([Float(configuration.scalingFactor)], shape: [], dtype: latents.dtype)
        return try (latents / scale).affine(scale: 1, shift: Float(configuration.shiftFactor ?? 0))
    }
}
