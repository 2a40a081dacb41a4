/// `transformer/config.json` of `ZImageTransformer2DModel`.
public struct ZImageTransformerConfiguration: Codable, Sendable, Equatable {
    public var allPatchSize: [Int]
    public var allFPatchSize: [Int]
    public var inChannels: Int
    public var dim: Int
    public var nLayers: Int
    public var nRefinerLayers: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var normEps: Double
    public var qkNorm: Bool
    public var capFeatDim: Int
    public var ropeTheta: Double
    public var tScale: Double
    public var axesDims: [Int]
    public var axesLens: [Int]

    public init(allPatchSize: [Int], allFPatchSize: [Int], inChannels: Int, dim: Int, nLayers: Int, nRefinerLayers: Int, nHeads: Int, nKVHeads: Int, normEps: Double, qkNorm: Bool, capFeatDim: Int, ropeTheta: Double, tScale: Double, axesDims: [Int], axesLens: [Int]) {
        self.allPatchSize = allPatchSize
        self.allFPatchSize = allFPatchSize
        self.inChannels = inChannels
        self.dim = dim
        self.nLayers = nLayers
        self.nRefinerLayers = nRefinerLayers
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.normEps = normEps
        self.qkNorm = qkNorm
        self.capFeatDim = capFeatDim
        self.ropeTheta = ropeTheta
        self.tScale = tScale
        self.axesDims = axesDims
        self.axesLens = axesLens
    }

    enum CodingKeys: String, CodingKey {
        case allPatchSize = "all_patch_size", allFPatchSize = "all_f_patch_size", inChannels = "in_channels", dim
        case nLayers = "n_layers", nRefinerLayers = "n_refiner_layers", nHeads = "n_heads", nKVHeads = "n_kv_heads"
        case normEps = "norm_eps", qkNorm = "qk_norm", capFeatDim = "cap_feat_dim", ropeTheta = "rope_theta"
        case tScale = "t_scale", axesDims = "axes_dims", axesLens = "axes_lens"
    }

    /// Width of the timestep conditioning `c`: min(dim, 256).
    public var adaLNDim: Int { min(dim, 256) }
    /// Hidden width of the SwiGLU feed-forward: int(dim / 3 · 8).
    public var feedForwardDim: Int { Int(Double(dim) / 3 * 8) }
    public var headDim: Int { dim / nHeads }
    /// Spatial patch size (2) and frame patch size (1).
    public var patchSize: Int { allPatchSize.first ?? 2 }
    public var framePatchSize: Int { allFPatchSize.first ?? 1 }
    /// Features of one patch token: pF·pH·pW·C.
    public var patchFeatures: Int { framePatchSize * patchSize * patchSize * inChannels }
    /// The suffix of the embedder and final-layer keys, e.g. "2-1".
    var patchKey: String { "\(patchSize)-\(framePatchSize)" }

    /// The real Z-Image-Turbo configuration (Hub `transformer/config.json`).
    public static let zImageTurbo = ZImageTransformerConfiguration(
        allPatchSize: [2], allFPatchSize: [1], inChannels: 16, dim: 3840, nLayers: 30, nRefinerLayers: 2, nHeads: 30,
        nKVHeads: 30, normEps: 1e-5, qkNorm: true, capFeatDim: 2560, ropeTheta: 256, tScale: 1000,
        axesDims: [32, 48, 48], axesLens: [1536, 512, 512])
}
