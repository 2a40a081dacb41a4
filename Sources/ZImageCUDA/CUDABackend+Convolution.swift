import Foundation
import ZImageTensor

// Convolutions through cuDNN, channels-last: the Backend contract is NCHW, so the input goes to
// NHWC (one transpose kernel), the filter to KRSC (once per weight, cached), cuDNN convolves in
// NHWC, and the result comes back to NCHW with the bias added in the same pass (Kernels/layout.cu).
// No im2col buffer: the VAE's 3×3 convolutions at 1024² would need gigabytes of it.
extension CUDABackend {
    static let convolutionWorkspaceLimit = 512 << 20
    /// Whether algorithms are timed (`ZIMAGE_CUDNN_FIND=1`) rather than taken from cuDNN's heuristic.
    static let timeConvolutionAlgorithms = ProcessInfo.processInfo.environment["ZIMAGE_CUDNN_FIND"] == "1"
    /// Filters kept in KRSC form; past this many the cache starts over (a model has ~40).
    static let convolutionFilterCacheLimit = 256

    /// The cuDNN convolution, or nil where it does not apply (then the caller uses im2col).
    func cudnnConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                          geometry g: Conv2DGeometry) throws -> Tensor? {
        let type: CUDNN.DataType
        switch x.dtype {
        case .bfloat16: type = .bfloat16
        case .float16: type = .half
        default: return nil
        }
        let dims = [g.batch, g.inChannels, g.height, g.width, g.outChannels, g.kernelHeight, g.kernelWidth, padding,
                    stride, g.outHeight, g.outWidth]
        guard useFusedKernels, dims.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }), g.batch <= 65_535,
              g.inChannels < 1 << 22, g.outChannels < 1 << 22,
              let dnn = cudnn() else { return nil }
        let key = CUDNN.Key(n: Int32(g.batch), c: Int32(g.inChannels), h: Int32(g.height), w: Int32(g.width),
                            k: Int32(g.outChannels), r: Int32(g.kernelHeight), s: Int32(g.kernelWidth),
                            padding: Int32(padding), stride: Int32(stride), outH: Int32(g.outHeight),
                            outW: Int32(g.outWidth), type: type.rawValue)
        let out = try allocate(shape: [g.batch, g.outChannels, g.outHeight, g.outWidth], dtype: x.dtype)
        guard out.count > 0, x.count > 0 else { return out }
        let filter = try channelsLastFilter(weight, dtype: x.dtype)
        let shift = try bias?.cast(to: x.dtype)
        let input = try profiled("conv layout") { try toChannelsLast(x, channels: g.inChannels, plane: g.height * g.width) }
        let product = try allocate(shape: [g.batch, g.outHeight, g.outWidth, g.outChannels], dtype: x.dtype)
        // The first time a shape is seen, pick its algorithm (cuDNN's heuristic; timed on these
        // operands with ZIMAGE_CUDNN_FIND=1); a shape cuDNN has no algorithm for goes to im2col.
        if !dnn.hasPlan(key) {
            let timed = Self.timeConvolutionAlgorithms
            let trial = try allocate(shape: [timed ? Self.convolutionWorkspaceLimit : 1], dtype: .uint8)
            try makeCurrent()
            do {
                try dnn.choose(key, timed: timed, x: UInt64(input.address), w: UInt64(filter.address),
                               y: UInt64(product.address), workspace: UInt64(trial.address),
                               workspaceBytes: Self.convolutionWorkspaceLimit)
            } catch { return nil }
            withExtendedLifetime(trial) {}
        }
        try profiled("conv2d (cuDNN)") {
            let workspace = try allocate(shape: [max(dnn.workspaceBytes(key) ?? 0, 1)], dtype: .uint8)
            try makeCurrent()
            try dnn.forward(key, x: UInt64(input.address), w: UInt64(filter.address), y: UInt64(product.address),
                            workspace: UInt64(workspace.address))
            withExtendedLifetime(workspace) {}
        }
        try profiled("conv layout") {
            try fromChannelsLast(product, into: out, bias: shift, channels: g.outChannels,
                                 plane: g.outHeight * g.outWidth)
        }
        withExtendedLifetime((input, filter, shift, product)) {}
        return out
    }

    /// `x` `[N, C, P]` as `[N, P, C]` (2-byte types).
    func toChannelsLast(_ x: Tensor, channels: Int, plane: Int) throws -> Tensor {
        let out = try allocate(shape: [x.shape[0], plane, channels], dtype: x.dtype)
        try launch("nchw_to_nhwc_b2", grid: ((plane + 63) / 64, (channels + 63) / 64, x.shape[0]), threads: 256,
                   [.address(x.address), .address(out.address), .int64(Int64(channels)), .int64(Int64(plane))])
        return out
    }

    /// `y` `[N, P, C]` into `out` `[N, C, P]`, plus `bias[c]` when given, rounded once.
    func fromChannelsLast(_ y: Tensor, into out: Tensor, bias: Tensor?, channels: Int, plane: Int) throws {
        let name = y.dtype == .bfloat16 ? "nhwc_to_nchw_bf16" : "nhwc_to_nchw_f16"
        try launch(name, grid: ((plane + 63) / 64, (channels + 63) / 64, y.shape[0]), threads: 256,
                   [.address(y.address), .address(out.address), .address(bias?.address ?? 0),
                    .int64(Int64(channels)), .int64(Int64(plane))])
    }

    /// The KRSC copy of a KCRS filter in `dtype`, made once per weight tensor (the cache holds the
    /// source tensor too, so its address cannot be reused while the copy is cached).
    func channelsLastFilter(_ weight: Tensor, dtype: DType) throws -> Tensor {
        let key = FilterKey(address: weight.address, count: weight.count, dtype: dtype)
        if let cached = convolutionFilters[key] { return cached.filter }
        let kernel = try weight.cast(to: dtype)
        let k = weight.shape[0], taps = weight.shape[2] * weight.shape[3]
        // KCRS is [K][C][RS]: the same transpose as an activation with N = K, C = C, P = R·S.
        let filter = try toChannelsLast(kernel.reshaped([k, weight.shape[1], taps]), channels: weight.shape[1],
                                        plane: taps)
        if convolutionFilters.count >= Self.convolutionFilterCacheLimit { convolutionFilters.removeAll() }
        convolutionFilters[key] = (weight, filter)
        return filter
    }

    /// Identity of a filter in the cache: the weight's storage, length and the element type wanted.
    struct FilterKey: Hashable {
        let address: UInt
        let count: Int
        let dtype: DType
    }

    public func rgb8(_ pixels: Tensor) throws -> Tensor {
        let suffix: String
        switch pixels.dtype {
        case .bfloat16: suffix = "bf16"
        case .float16: suffix = "f16"
        case .float32: suffix = "f32"
        default: return try FusedReference.rgb8(self, pixels)
        }
        guard useFusedKernels, pixels.shape.rank == 4, pixels.shape[0] == 1, pixels.shape[1] == 3 else {
            return try FusedReference.rgb8(self, pixels)
        }
        let plane = pixels.shape[2] * pixels.shape[3]
        let out = try allocate(shape: [pixels.shape[2], pixels.shape[3], 3], dtype: .uint8)
        guard plane > 0 else { return out }
        try profiled("rgb8") {
            try launch("rgb8_\(suffix)", blocks: gridBlocks(plane), threads: 256,
                       [.address(pixels.address), .address(out.address), .int64(Int64(plane))])
        }
        return out
    }
}
