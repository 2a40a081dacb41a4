/// The sizes of Z-Image-Turbo's three components that cost memory and time, from their configs
/// (transformer/config.json, text_encoder/config.json, vae/config.json; docs/notes/vram-planner.md).
public struct ModelShape: Sendable, Equatable, Codable {
    // DiT
    public var dim = 3840
    public var layers = 30
    public var refinerLayers = 2
    public var ffnHidden = 10240
    public var patch = 2
    public var latentChannels = 16
    public var captionFeatures = 2560
    /// Parameters of the whole DiT (6 154 908 736 in the Hub files).
    public var transformerParameters = 6_154_908_736
    // Text encoder (Qwen3-4B, layers 0…n−2 only)
    public var textHidden = 2560
    public var textLayersRun = 35
    public var textIntermediate = 9728
    public var textHeads = 32, textKVHeads = 8, textHeadDim = 128
    /// Parameters loaded (embedding and layers 0…34; no last layer, final norm or head).
    public var textParameters = 3_921_534_720
    /// Of which the token embedding (151 936 × 2560).
    public var textEmbeddingParameters = 388_956_160
    // VAE decoder
    public var vaeChannels = [128, 256, 512, 512]
    public var vaeLayersPerBlock = 2
    /// Parameters of the VAE (encoder and decoder: both are loaded).
    public var vaeParameters = 83_819_683
    /// The VAE's spatial factor.
    public var vaeScale = 8

    /// Z-Image-Turbo as published.
    public static let zImageTurbo = ModelShape()

    public init() {}

    /// Weight parameters of one modulated block's linear layers (q, k, v, out; w1, w2, w3).
    public var blockLinearParameters: Int { 4 * dim * dim + 3 * dim * ffnHidden }
    /// Linear weights that fp8 and int8 store in 8 bits: the image-token blocks (noise refiner, main layers).
    public var fp8Parameters: Int { (layers + refinerLayers) * blockLinearParameters }

    /// Image tokens of a `width`×`height` image (one per 16×16 pixels), padded to 32.
    public func imageTokens(width: Int, height: Int) -> Int {
        Self.padded((height / (vaeScale * patch)) * (width / (vaeScale * patch)))
    }

    /// Caption tokens after the pad to 32 (at least 32).
    public func captionTokens(_ tokens: Int) -> Int { Self.padded(max(tokens, 1)) }

    static func padded(_ n: Int) -> Int { (n + 31) / 32 * 32 }

    /// FLOPs of one DiT forward (2 per multiply-add), split into the image-token blocks' linear
    /// layers (what FP8 speeds up), attention, and the rest.
    public func transformerFLOPs(width: Int, height: Int, captionTokens: Int)
        -> (imageLinear: Double, attention: Double, other: Double) {
        let image = Double(imageTokens(width: width, height: height)), caption = Double(self.captionTokens(captionTokens))
        let d = Double(dim), linear = 2 * Double(blockLinearParameters)
        let joint = image + caption
        let imageLinear = linear * (image * Double(refinerLayers) + joint * Double(layers))
        let attention = 4 * d * (image * image * Double(refinerLayers) + caption * caption * Double(refinerLayers)
            + joint * joint * Double(layers))
        let patchFeatures = Double(patch * patch * latentChannels)
        let other = linear * caption * Double(refinerLayers) + 2 * patchFeatures * d * image * 2
            + 2 * Double(captionFeatures) * d * caption
        return (imageLinear, attention, other)
    }

    /// FLOPs of the text encoder on `tokens` real tokens.
    public func textEncoderFLOPs(tokens: Int) -> Double {
        let t = Double(tokens), h = Double(textHidden)
        let q = Double(textHeads * textHeadDim), kv = Double(textKVHeads * textHeadDim)
        let perToken = 2 * (h * q * 2 + h * kv * 2 + 3 * h * Double(textIntermediate))
        let attention = 4 * t * t * q
        return Double(textLayersRun) * (perToken * t + attention)
    }

    /// FLOPs of the VAE decoder for a `width`×`height` image, from its block structure (3×3
    /// convolutions, 1×1 shortcuts where channels change, the mid-block attention at latent size).
    public func vaeDecodeFLOPs(width: Int, height: Int) -> Double {
        let latent = Double((width / vaeScale) * (height / vaeScale))
        func conv(_ cin: Int, _ cout: Int, _ pixels: Double, kernel: Double = 9) -> Double {
            2 * kernel * Double(cin) * Double(cout) * pixels
        }
        let top = vaeChannels.last ?? 512
        var flops = conv(latentChannels, top, latent)
        flops += 4 * conv(top, top, latent) + 4 * latent * latent * Double(top)  // mid: 2 resnets + attention
        var channels = top, pixels = latent
        for (index, out) in vaeChannels.reversed().enumerated() {
            for resnet in 0...vaeLayersPerBlock {
                let cin = resnet == 0 ? channels : out
                flops += conv(cin, out, pixels) + conv(out, out, pixels)
                if cin != out { flops += conv(cin, out, pixels, kernel: 1) }
            }
            channels = out
            if index < vaeChannels.count - 1 {
                pixels *= 4
                flops += conv(out, out, pixels)
            }
        }
        return flops + conv(channels, 3, pixels)
    }

    /// The blocks block streaming moves through two device slots: the main layers and the noise
    /// refiner (same shapes). The caption (context) refiner streams in both streamed modes, on the
    /// device only while a prompt is encoded; the embedders and final layer stay resident.
    public var streamedBlocks: Int { layers + refinerLayers }

    /// Output rows of the image-token blocks' projections (one float32 scale each when quantised).
    var quantisedTransformerRows: Int { (layers + refinerLayers) * (5 * dim + 2 * ffnHidden) }

    /// Parameters of one text-encoder layer (its projections and norms).
    public var textLayerParameters: Int { (textParameters - textEmbeddingParameters) / max(textLayersRun, 1) }
    /// Weight parameters of one text-encoder layer's projections (q, k, v, o; gate, up, down).
    public var textLayerProjectionParameters: Int {
        let q = textHeads * textHeadDim, kv = textKVHeads * textHeadDim
        return 2 * textHidden * q + 2 * textHidden * kv + 3 * textHidden * textIntermediate
    }
    /// Output rows of those projections.
    var textLayerProjectionRows: Int {
        textHeads * textHeadDim + 2 * textKVHeads * textHeadDim + textHidden + 2 * textIntermediate + textHidden
    }

    /// Bytes of one text-encoder layer on the device: bf16, or with `quantised` (fp8/int8 applied to
    /// the text encoder) its projections in one byte plus a float32 scale per output row.
    public func textLayerBytes(_ format: WeightFormat, quantised: Bool) -> Int {
        guard quantised, format.isQuantised else { return 2 * textLayerParameters }
        let projections = textLayerProjectionParameters
        return 2 * (textLayerParameters - projections) + projections + 4 * textLayerProjectionRows
    }

    /// Bytes of the resident weights of each component for a weight format. `fp8` and `int8` hold
    /// the image-token blocks' linear weights (noise refiner, main layers) in one byte plus a float32
    /// scale per output channel (`keepsDenseCopy`: the dense bf16 weights kept beside them);
    /// `quantisedTextEncoder` quantises the text encoder's projections likewise; the text encoder's
    /// token embedding (151 936 × 2560 bf16) counts only with `embeddingOnDevice`.
    public func weightBytes(_ format: WeightFormat, keepsDenseCopy: Bool, quantisedTextEncoder: Bool = false,
                            embeddingOnDevice: Bool = true) -> (transformer: Int, textEncoder: Int, vae: Int) {
        let dense = 2 * transformerParameters
        let transformer: Int
        if format.isQuantised {
            let quantised = fp8Parameters + 4 * quantisedTransformerRows
            transformer = keepsDenseCopy ? dense + quantised : dense - 2 * fp8Parameters + quantised
        } else {
            transformer = dense
        }
        let layers = textLayersRun * textLayerBytes(format, quantised: quantisedTextEncoder)
        let embedding = embeddingOnDevice ? 2 * textEmbeddingParameters : 0
        return (transformer, layers + embedding, 2 * vaeParameters)
    }

    /// Bytes of one caption-refiner block (unmodulated, always dense bf16).
    public var captionBlockBytes: Int { 2 * blockLinearParameters }

    /// Bytes of one modulated block's weights in a format (what block streaming moves per block).
    public func blockBytes(_ format: WeightFormat) -> Int {
        let modulation = 2 * 256 * 4 * dim  // adaLN: min(dim, 256) → 4·dim, bf16
        return modulation + (format.isQuantised ? blockLinearParameters + 4 * (5 * dim + 2 * ffnHidden) : 2 * blockLinearParameters)
    }

    /// Bytes of the DiT's live activations during a forward (bf16 hidden states, q/k/v, the FFN's
    /// intermediates, float32 RoPE temporaries), for `tokens` joint tokens.
    public func transformerActivationBytes(tokens: Int) -> Int {
        tokens * (2 * (8 * dim + 3 * ffnHidden) + 4 * 2 * dim)
    }
}

/// How the big linear layers' weights are stored on the device.
public enum WeightFormat: String, Sendable, Codable, CaseIterable {
    /// Two bytes a weight (the published files).
    case bf16
    /// e4m3 weights with a float32 scale per output row; activations quantised per token; FP8 GEMMs.
    case fp8
    /// Weight-only int8 with a float32 scale per output row, widened to bf16 before each bf16 GEMM.
    case int8

    /// Whether the big projections are held in one byte a weight.
    public var isQuantised: Bool { self != .bf16 }
}
