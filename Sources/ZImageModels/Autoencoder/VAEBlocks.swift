import ZImageTensor

/// The layers the VAE's encoder and decoder share (diffusers' `AutoencoderKL` building blocks),
/// each declaring its keys as it is built (see `ParameterSource`).

/// A 2-D convolution: `prefix.weight` `[output, input, kernel, kernel]`, `prefix.bias` `[output]`.
struct VAEConv<Source: ParameterSource> {
    let weight: Source.Value, bias: Source.Value, padding: Int

    init(_ source: Source, _ prefix: String, input: Int, output: Int, kernel: Int = 3,
         padding: Int = 1) throws(Source.Failure) {
        weight = try source.tensor(prefix + ".weight", shape: [output, input, kernel, kernel])
        bias = try source.tensor(prefix + ".bias", shape: [output])
        self.padding = padding
    }
}

extension VAEConv where Source == LoadedParameters {
    func callAsFunction(_ x: Tensor) throws -> Tensor { try x.conv2d(weight: weight, bias: bias, padding: padding) }

    /// The convolution with stride 2 (the encoder's down-samplers).
    func stride2(_ x: Tensor) throws -> Tensor { try x.conv2d(weight: weight, bias: bias, stride: 2, padding: padding) }
}

/// GroupNorm (eps 1e-6) with an affine `prefix.weight`, `prefix.bias` `[channels]`.
struct VAEGroupNorm<Source: ParameterSource> {
    let weight: Source.Value, bias: Source.Value, groups: Int

    init(_ source: Source, _ prefix: String, channels: Int, groups: Int) throws(Source.Failure) {
        weight = try source.tensor(prefix + ".weight", shape: [channels])
        bias = try source.tensor(prefix + ".bias", shape: [channels])
        self.groups = groups
    }
}

extension VAEGroupNorm where Source == LoadedParameters {
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.groupNorm(groups: groups, weight: weight, bias: bias, eps: 1e-6)
    }

    /// `silu(norm(x))` as one fused op.
    func silu(_ x: Tensor) throws -> Tensor {
        try x.groupNormSiLU(groups: groups, weight: weight, bias: bias, eps: 1e-6)
    }
}

/// `ResnetBlock2D`: two (GroupNorm, SiLU, 3×3 conv) steps, a 1×1 shortcut when the channel count
/// changes.
struct VAEResnetBlock<Source: ParameterSource> {
    let norm1: VAEGroupNorm<Source>, conv1: VAEConv<Source>, norm2: VAEGroupNorm<Source>, conv2: VAEConv<Source>
    let shortcut: VAEConv<Source>?

    init(_ source: Source, _ prefix: String, input: Int, output: Int, groups: Int) throws(Source.Failure) {
        norm1 = try VAEGroupNorm(source, prefix + ".norm1", channels: input, groups: groups)
        conv1 = try VAEConv(source, prefix + ".conv1", input: input, output: output)
        norm2 = try VAEGroupNorm(source, prefix + ".norm2", channels: output, groups: groups)
        conv2 = try VAEConv(source, prefix + ".conv2", input: output, output: output)
        if input != output {
            shortcut = try VAEConv(source, prefix + ".conv_shortcut", input: input, output: output, kernel: 1, padding: 0)
        } else {
            shortcut = nil
        }
    }
}

extension VAEResnetBlock where Source == LoadedParameters {
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try conv2(norm2.silu(conv1(norm1.silu(x))))
        return try (shortcut?(x) ?? x) + h
    }
}

/// Single-head self-attention over the H·W positions, with its residual.
struct VAEAttentionBlock<Source: ParameterSource> {
    let norm: VAEGroupNorm<Source>, q: Linear<Source>, k: Linear<Source>, v: Linear<Source>, out: Linear<Source>

    init(_ source: Source, _ prefix: String, channels c: Int, groups: Int) throws(Source.Failure) {
        norm = try VAEGroupNorm(source, prefix + ".group_norm", channels: c, groups: groups)
        q = try Linear(source, prefix + ".to_q", input: c, output: c, bias: true)
        k = try Linear(source, prefix + ".to_k", input: c, output: c, bias: true)
        v = try Linear(source, prefix + ".to_v", input: c, output: c, bias: true)
        out = try Linear(source, prefix + ".to_out.0", input: c, output: c, bias: true)
    }
}

extension VAEAttentionBlock where Source == LoadedParameters {
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

/// `UNetMidBlock2D`: ResNet, self-attention (unless the configuration leaves it out), ResNet.
struct VAEMidBlock<Source: ParameterSource> {
    let resnets: [VAEResnetBlock<Source>]
    let attention: VAEAttentionBlock<Source>?

    init(_ source: Source, _ prefix: String, channels: Int, groups: Int, attention hasAttention: Bool)
        throws(Source.Failure) {
        resnets = [
            try VAEResnetBlock(source, prefix + ".resnets.0", input: channels, output: channels, groups: groups),
            try VAEResnetBlock(source, prefix + ".resnets.1", input: channels, output: channels, groups: groups),
        ]
        if hasAttention {
            attention = try VAEAttentionBlock(source, prefix + ".attentions.0", channels: channels, groups: groups)
        } else {
            attention = nil
        }
    }
}

extension VAEMidBlock where Source == LoadedParameters {
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try resnets[0](x)
        if let attention { h = try attention(h) }
        return try resnets[1](h)
    }
}

/// An up or down block: its ResNets (`prefix.resnets.j`), then the resampling convolution
/// (`prefix.upsamplers.0.conv` or `prefix.downsamplers.0.conv`) except in the last block.
struct VAESampleBlock<Source: ParameterSource> {
    let resnets: [VAEResnetBlock<Source>]
    let resample: VAEConv<Source>?

    /// `count` ResNets from `input` to `output` channels; `resampler` names the resampling conv
    /// (nil: none), whose padding is `resamplePadding`.
    init(_ source: Source, _ prefix: String, input: Int, output: Int, count: Int, groups: Int,
         resampler: String?, resamplePadding: Int) throws(Source.Failure) {
        var resnets: [VAEResnetBlock<Source>] = []
        for j in 0..<count {
            resnets.append(try VAEResnetBlock(source, prefix + ".resnets.\(j)", input: j == 0 ? input : output,
                                              output: output, groups: groups))
        }
        self.resnets = resnets
        if let resampler {
            resample = try VAEConv(source, prefix + ".\(resampler).0.conv", input: output, output: output,
                                   padding: resamplePadding)
        } else {
            resample = nil
        }
    }
}
