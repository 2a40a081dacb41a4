/// Elementwise binary ops (NumPy broadcasting).
public enum BinaryOp: String, Sendable, CaseIterable {
    case add, subtract, multiply, divide
}

/// Elementwise unary ops.
public enum UnaryOp: String, Sendable, CaseIterable {
    case silu
    /// GELU with the exact erf form.
    case gelu
    /// GELU with the tanh approximation.
    case geluTanh
    case tanh
    case sigmoid
    case exp
    case negate
}

/// How rotary position embedding pairs up the elements of a head vector.
public enum RoPELayout: String, Sendable {
    /// Adjacent pairs `(x[2i], x[2i+1])`: the complex-number form of the Z-Image DiT.
    case interleavedPairs
    /// Split halves `(x[i], x[i + D/2])`: HF `rotate_half`, used by Qwen3.
    case splitHalves
}

/// A compute device: its memory and the ops the Z-Image models need.
///
/// Ops validate their operands, queue the work (asynchronously on a GPU) and return new tensors
/// from the backend's memory pool. Nothing goes back to the host unless `download` is called.
/// Conventions shared by every backend:
/// - compute happens in float32; results are rounded to the dtype of the first input;
/// - `matmul` takes `a` as `[batch..., M, K]` (or `[batch..., K, M]` with `transposeA`) and `b`
///   as `[K, N]`/`[N, K]` shared across the batch or `[batch..., K, N]`/`[batch..., N, K]`;
///   `bias` is `[N]`;
/// - `attention` takes tokens-major `[B, L, H, D]` query, key and value (key and value may have
///   fewer heads, each serving `Hq / Hk` query heads), an optional key mask `[B, Lk]` (nonzero =
///   attend), and returns `[B, Lq, H, Dv]`;
/// - `rope` takes `x` as `[B, L, H, D]` and float32 `cos`/`sin` as `[L, D/2]` or `[B, L, D/2]`.
public protocol Backend: AnyObject {
    /// The device this backend drives.
    var device: Device { get }

    // MARK: Memory

    /// A new, uninitialised tensor from the pool.
    func allocate(shape: Shape, dtype: DType) throws -> Tensor
    /// Returns memory to the pool (called by `TensorStorage`).
    func release(address: UInt, byteCount: Int)
    /// Copies host bytes into a new tensor on this device.
    func upload(_ bytes: UnsafeRawBufferPointer, shape: Shape, dtype: DType) throws -> Tensor
    /// Copies a tensor's bytes to the host, waiting for the work that produces them.
    func download(_ tensor: Tensor, into destination: UnsafeMutableRawBufferPointer) throws
    /// Waits until all queued work is done.
    func synchronize() throws

    // MARK: Ops

    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, bias: Tensor?) throws -> Tensor
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor
    /// `x * scale + shift`.
    func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor
    func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor
    /// RMSNorm over the last axis: statistics in float32, the normalised value rounded to the
    /// input dtype, then multiplied by `weight` (as diffusers and transformers do).
    func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor
    /// LayerNorm over the last axis.
    func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor
    /// GroupNorm over `[N, C, spatial...]`.
    func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor
    /// Softmax over the last axis.
    func softmax(_ x: Tensor) throws -> Tensor
    /// Scaled-dot-product attention (see the protocol notes for layouts).
    func attention(query: Tensor, key: Tensor, value: Tensor, keyMask: Tensor?, causal: Bool,
                   scale: Float) throws -> Tensor
    /// Rotary position embedding (see the protocol notes for layouts).
    func rope(_ x: Tensor, cos: Tensor, sin: Tensor, layout: RoPELayout) throws -> Tensor
    /// 2-D convolution, `x` `[N, C, H, W]`, `weight` `[O, C, kh, kw]`, `bias` `[O]`.
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) throws -> Tensor
    /// Nearest-neighbour 2x upsampling of `[N, C, H, W]`.
    func upsampleNearest2x(_ x: Tensor) throws -> Tensor
    func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor
    /// Elements `range` along `axis` (a copy).
    func slice(_ x: Tensor, axis: Int, range: Range<Int>) throws -> Tensor
    /// Reorders axes (a copy): output axis `i` is input axis `dims[i]`.
    func permute(_ x: Tensor, _ dims: [Int]) throws -> Tensor
    /// Rows of `weight` `[V, E]` picked by integer `ids` → `[ids..., E]`.
    func embedding(_ weight: Tensor, ids: Tensor) throws -> Tensor
    /// Converts between float types (round to nearest even).
    func cast(_ x: Tensor, to dtype: DType) throws -> Tensor

    // MARK: Fused ops (each has a reference default built from the ops above: FusedReference)

    /// `rmsNorm(x, weight) · scale`, with `scale` one row `[W]`/`[1, W]` shared by every row.
    func rmsNormScaled(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Tensor
    /// `x + gate · rmsNorm(y, weight)` (gate one shared row, or nil for 1): a sandwich norm's residual.
    func gatedRMSNormResidual(_ x: Tensor, _ y: Tensor, weight: Tensor?, gate: Tensor?, eps: Float) throws -> Tensor
    /// `rope(rmsNorm(x, weight))` over the head vectors of `x` `[B, L, H, D]`.
    func rmsNormRope(_ x: Tensor, weight: Tensor?, eps: Float, cos: Tensor, sin: Tensor,
                     layout: RoPELayout) throws -> Tensor
    /// `silu(a) · b` (same shapes): the SwiGLU gate.
    func siluMultiply(_ a: Tensor, _ b: Tensor) throws -> Tensor
    /// `silu(groupNorm(x))`: the VAE's norm before each convolution.
    func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor
    /// A decoded image `[1, 3, H, W]` in [−1, 1] as 8-bit RGB `[H, W, 3]` (uint8):
    /// round-half-even(clamp(x/2 + 0.5, 0, 1) · 255), the reference's post-processing.
    func rgb8(_ pixels: Tensor) throws -> Tensor
    /// `quantizeRowsFloat8(rmsNormScaled(x, …))`: a norm whose only reader is an FP8 linear layer.
    func rmsNormScaledFloat8(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Float8Rows
    /// `x` (rows = all but the last axis) quantised per row to FP8 e4m3 (see `Float8Rows`).
    func quantizeRowsFloat8(_ x: Tensor) throws -> Float8Rows
    /// `x · weightᵀ (+ bias)` from FP8 rows, returned in `dtype` with `x`'s leading shape:
    /// `out[i, j] = sx[i] · sw[j] · Σₖ qx[i, k] · qw[j, k] + bias[j]`, accumulated in float32.
    func float8Linear(_ x: Float8Rows, _ weight: Float8Rows, bias: Tensor?, dtype: DType) throws -> Tensor
    /// Whether FP8 weights are widened to the activation dtype before a dense GEMM instead of
    /// multiplied in FP8 (activations then stay unquantised): GPUs without FP8 tensor cores.
    var widensFloat8Weights: Bool { get }
    /// `x` (rows = all but the last axis) quantised per row to symmetric int8 (see `Int8Rows`).
    func quantizeRowsInt8(_ x: Tensor) throws -> Int8Rows
    /// int8 rows widened to `dtype` (a compute type): `values[i, j] · scales[i]` in float32,
    /// rounded once; the scratch weight of an int8 linear layer's dense GEMM.
    func dequantizeRows(_ rows: Int8Rows, dtype: DType) throws -> Tensor
    /// FP8 rows widened to `dtype` the same way (FP8 storage without an FP8 GEMM).
    func dequantizeRows(_ rows: Float8Rows, dtype: DType) throws -> Tensor

    // MARK: Profiling

    /// Names the stage the ops queued from now on belong to ("text encoder", "step 3", "vae").
    /// Backends that profile attribute op time to it; the default ignores it.
    func beginStage(_ name: String)
    /// The profile of the ops run so far, as a printable table (nil when the backend does not profile).
    func profileReport() -> String?
}
