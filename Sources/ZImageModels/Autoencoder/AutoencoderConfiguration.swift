/// `vae/config.json` of the FLUX-style `AutoencoderKL`.
///
/// Decoded as diffusers 0.42.1's `AutoencoderKL.__init__` reads it: its defaults for absent fields
/// (`use_post_quant_conv` true, `mid_block_add_attention` true, `scaling_factor` 0.18215, …),
/// unknown fields ignored; wrong types, and values the decoder here cannot run (another
/// activation or up-block type, groups that do not divide the channels), are errors naming the field.
public struct AutoencoderConfiguration: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var latentChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var normNumGroups: Int
    public var scalingFactor: Double
    public var shiftFactor: Double?
    public var midBlockAddAttention: Bool?
    public var usePostQuantConv: Bool?

    public init(inChannels: Int, outChannels: Int, latentChannels: Int, blockOutChannels: [Int], layersPerBlock: Int, normNumGroups: Int, scalingFactor: Double, shiftFactor: Double?, midBlockAddAttention: Bool?, usePostQuantConv: Bool?) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.latentChannels = latentChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.normNumGroups = normNumGroups
        self.scalingFactor = scalingFactor
        self.shiftFactor = shiftFactor
        self.midBlockAddAttention = midBlockAddAttention
        self.usePostQuantConv = usePostQuantConv
    }

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case normNumGroups = "norm_num_groups", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case midBlockAddAttention = "mid_block_add_attention", usePostQuantConv = "use_post_quant_conv"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        func value<T: Decodable>(_ key: String, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: AnyKey(key)) ?? fallback
        }
        func refuse(_ key: String, _ detail: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: c.codingPath + [AnyKey(key)], debugDescription: detail))
        }
        inChannels = try value("in_channels", 3)
        outChannels = try value("out_channels", 3)
        latentChannels = try value("latent_channels", 4)
        blockOutChannels = try value("block_out_channels", [64])
        layersPerBlock = try value("layers_per_block", 1)
        normNumGroups = try value("norm_num_groups", 32)
        scalingFactor = try value("scaling_factor", 0.18215)
        shiftFactor = try c.decodeIfPresent(Double.self, forKey: AnyKey("shift_factor"))
        midBlockAddAttention = try value("mid_block_add_attention", true)
        usePostQuantConv = try value("use_post_quant_conv", true)
        if let act = try c.decodeIfPresent(String.self, forKey: AnyKey("act_fn")), act != "silu" {
            throw refuse("act_fn", "is '\(act)'; only 'silu' is supported")
        }
        // Absent (as in configs this package writes itself): one UpDecoderBlock2D per entry.
        if let upBlocks = try c.decodeIfPresent([String].self, forKey: AnyKey("up_block_types")) {
            if let other = upBlocks.first(where: { $0 != "UpDecoderBlock2D" }) {
                throw refuse("up_block_types", "contains '\(other)'; only UpDecoderBlock2D is supported")
            }
            guard upBlocks.count == blockOutChannels.count else {
                throw refuse("up_block_types", "has \(upBlocks.count) entries for \(blockOutChannels.count) block_out_channels")
            }
        }
        for (key, size, range) in [("in_channels", inChannels, 1...64), ("out_channels", outChannels, 1...64),
                                   ("latent_channels", latentChannels, 1...1024), ("layers_per_block", layersPerBlock, 0...64),
                                   ("norm_num_groups", normNumGroups, 1...65536)] where !range.contains(size) {
            throw refuse(key, "is \(size); expected \(range.lowerBound) to \(range.upperBound)")
        }
        guard (1...16).contains(blockOutChannels.count), blockOutChannels.allSatisfy({ (1...65536).contains($0) }) else {
            throw refuse("block_out_channels", "must hold 1 to 16 sizes of 1 to 65536")
        }
        if let odd = blockOutChannels.first(where: { $0 % normNumGroups != 0 }) {
            throw refuse("norm_num_groups", "(\(normNumGroups)) does not divide block_out_channels entry \(odd)")
        }
        guard scalingFactor.isFinite, scalingFactor != 0 else { throw refuse("scaling_factor", "must be a non-zero number") }
    }

    /// The real Z-Image-Turbo VAE configuration.
    public static let zImageTurbo = AutoencoderConfiguration(
        inChannels: 3, outChannels: 3, latentChannels: 16, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2,
        normNumGroups: 32, scalingFactor: 0.3611, shiftFactor: 0.1159, midBlockAddAttention: true,
        usePostQuantConv: false)
}
