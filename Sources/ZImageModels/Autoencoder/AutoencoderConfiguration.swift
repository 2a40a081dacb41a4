/// `vae/config.json` of the FLUX-style `AutoencoderKL` (spec §1.3, §4).
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

    /// The real Z-Image-Turbo VAE configuration.
    public static let zImageTurbo = AutoencoderConfiguration(
        inChannels: 3, outChannels: 3, latentChannels: 16, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2,
        normNumGroups: 32, scalingFactor: 0.3611, shiftFactor: 0.1159, midBlockAddAttention: true,
        usePostQuantConv: false)
}
