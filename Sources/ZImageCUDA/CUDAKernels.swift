import ZImageTensor

/// The CUDA C source of every kernel, compiled at run time by NVRTC into one module.
///
/// The source includes no header (NVRTC's built-ins suffice): bfloat16 and float16 travel as
/// 16-bit integers and are converted with bit operations (round to nearest even, NaN → 0x7FC0, as
/// PyTorch) and the PTX `cvt` instruction. Every kernel is `extern "C"` and named
/// `<op>_<dtype>` so the host looks it up by name.
public enum CUDAKernels {
    /// Element types the kernels are instantiated for, with their C type and name suffix.
    static let types: [(dtype: DType, cType: String, suffix: String)] = [
        (.float32, "float", "f32"), (.bfloat16, "bf16", "bf16"), (.float16, "f16", "f16"),
    ]

    /// Kernel name suffix for `dtype`.
    static func suffix(_ dtype: DType) -> String? { types.first { $0.dtype == dtype }?.suffix }

    /// Codes of the unary ops inside the kernels.
    static func code(_ op: UnaryOp) -> Int {
        switch op {
        case .silu: 0
        case .gelu: 1
        case .geluTanh: 2
        case .tanh: 3
        case .sigmoid: 4
        case .exp: 5
        case .negate: 6
        }
    }

    static func code(_ op: BinaryOp) -> Int {
        switch op {
        case .add: 0
        case .subtract: 1
        case .multiply: 2
        case .divide: 3
        }
    }

    /// Highest tensor rank the broadcasting kernels take.
    static let maximumRank = 6

    static let prelude = #"""
    struct bf16 { unsigned short bits; };
    struct f16 { unsigned short bits; };

    __device__ __forceinline__ float to_float(float v) { return v; }
    __device__ __forceinline__ float to_float(bf16 v) { return __uint_as_float(((unsigned int)v.bits) << 16); }
    __device__ __forceinline__ float to_float(f16 v) {
        float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits)); return f;
    }
    template <typename T> __device__ __forceinline__ T from_float(float v);
    template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
    template <> __device__ __forceinline__ bf16 from_float<bf16>(float v) {
        unsigned int u = __float_as_uint(v);
        bf16 r;
        if ((u & 0x7fffffffu) > 0x7f800000u) { r.bits = 0x7fc0; return r; }
        u += 0x7fffu + ((u >> 16) & 1u);
        r.bits = (unsigned short)(u >> 16);
        return r;
    }
    template <> __device__ __forceinline__ f16 from_float<f16>(float v) {
        f16 r; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(v)); return r;
    }

    #define MAX_RANK 6
    #define NEG_INF __int_as_float(0xff800000u)
    struct Broadcast {
        long long count;
        long long rank;
        long long dims[MAX_RANK];
        long long a_strides[MAX_RANK];
        long long b_strides[MAX_RANK];
    };

    __device__ __forceinline__ float unary_op(int op, float x) {
        switch (op) {
        case 0: return x / (1.0f + expf(-x));
        case 1: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        case 2: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        case 3: return tanhf(x);
        case 4: return 1.0f / (1.0f + expf(-x));
        case 5: return expf(x);
        default: return -x;
        }
    }

    __device__ __forceinline__ float binary_op(int op, float a, float b) {
        switch (op) {
        case 0: return a + b;
        case 1: return a - b;
        case 2: return a * b;
        default: return a / b;
        }
    }

    template <typename T>
    __device__ void binary_body(int op, const T* a, const T* b, T* out, Broadcast g) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < g.count;
             i += (long long)gridDim.x * blockDim.x) {
            long long rest = i, ia = 0, ib = 0;
            for (int axis = (int)g.rank - 1; axis >= 0; --axis) {
                long long index = rest % g.dims[axis];
                rest /= g.dims[axis];
                ia += index * g.a_strides[axis];
                ib += index * g.b_strides[axis];
            }
            out[i] = from_float<T>(binary_op(op, to_float(a[ia]), to_float(b[ib])));
        }
    }

    template <typename T>
    __device__ void unary_body(int op, const T* x, T* out, long long n) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
             i += (long long)gridDim.x * blockDim.x)
            out[i] = from_float<T>(unary_op(op, to_float(x[i])));
    }

    template <typename T>
    __device__ void affine_body(const T* x, T* out, long long n, float scale, float shift) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
             i += (long long)gridDim.x * blockDim.x)
            out[i] = from_float<T>(to_float(x[i]) * scale + shift);
    }

    template <typename S, typename D>
    __device__ void cast_body(const S* x, D* out, long long n) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
             i += (long long)gridDim.x * blockDim.x)
            out[i] = from_float<D>(to_float(x[i]));
    }

    // One block of 256 threads per row. Statistics in float32; the normalised value is rounded to
    // the element type before the weight multiplies it (diffusers RMSNorm / Qwen3RMSNorm).
    template <typename T>
    __device__ void rms_norm_body(const T* x, const T* weight, T* out, long long width, float eps) {
        __shared__ float partial[256];
        const T* row = x + blockIdx.x * width;
        T* dst = out + blockIdx.x * width;
        float sum = 0.0f;
        for (long long j = threadIdx.x; j < width; j += blockDim.x) { float v = to_float(row[j]); sum += v * v; }
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
            if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
            __syncthreads();
        }
        float inverse = rsqrtf(partial[0] / (float)width + eps);
        for (long long j = threadIdx.x; j < width; j += blockDim.x) {
            float normalised = to_float(from_float<T>(to_float(row[j]) * inverse));
            dst[j] = from_float<T>(weight ? normalised * to_float(weight[j]) : normalised);
        }
    }

    // Strided copy: iterate over `dims`, read at Σ idx·in_strides, write at Σ idx·out_strides.
    struct Copy {
        long long count;
        long long rank;
        long long dims[MAX_RANK];
        long long in_strides[MAX_RANK];
        long long out_strides[MAX_RANK];
    };
    template <typename T>
    __device__ void copy_body(const T* in, T* out, Copy g) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < g.count;
             i += (long long)gridDim.x * blockDim.x) {
            long long rest = i, io = 0, oo = 0;
            for (int axis = (int)g.rank - 1; axis >= 0; --axis) {
                long long index = rest % g.dims[axis];
                rest /= g.dims[axis];
                io += index * g.in_strides[axis];
                oo += index * g.out_strides[axis];
            }
            out[oo] = in[io];
        }
    }

    // Nearest 2x upsampling of [planes, H, W].
    template <typename T>
    __device__ void upsample_body(const T* in, T* out, long long planes, long long h, long long w) {
        long long count = planes * 4 * h * w;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
             i += (long long)gridDim.x * blockDim.x) {
            long long x = i % (2 * w), rest = i / (2 * w);
            long long y = rest % (2 * h), plane = rest / (2 * h);
            out[i] = in[(plane * h + y / 2) * w + x / 2];
        }
    }

    // Gather rows of a [V, E] table by int32 ids (validated on the host).
    template <typename T>
    __device__ void gather_body(const T* table, const int* ids, T* out, long long count, long long width) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count * width;
             i += (long long)gridDim.x * blockDim.x)
            out[i] = table[(long long)ids[i / width] * width + i % width];
    }

    __device__ float block_sum(float value, float* shared) {
        shared[threadIdx.x] = value;
        __syncthreads();
        for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
            if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
            __syncthreads();
        }
        float result = shared[0];
        __syncthreads();
        return result;
    }
    __device__ float block_max(float value, float* shared) {
        shared[threadIdx.x] = value;
        __syncthreads();
        for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
            if (threadIdx.x < stride) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + stride]);
            __syncthreads();
        }
        float result = shared[0];
        __syncthreads();
        return result;
    }

    // Softmax over rows of `width`; optional key mask (per batch item, `rows_per_item` rows each),
    // causal masking (row r of a block of `queries` rows sees keys <= r), scale applied first.
    template <typename T>
    __device__ void softmax_body(const T* x, T* out, long long width, float scale, const unsigned char* mask,
                                 long long rows_per_item, long long queries, int causal) {
        __shared__ float shared[256];
        long long row = blockIdx.x;
        const T* src = x + row * width;
        T* dst = out + row * width;
        const unsigned char* keys = mask ? mask + (row / rows_per_item) * width : 0;
        long long limit = causal ? (row % queries) + 1 : width;
        float maximum = NEG_INF;
        for (long long j = threadIdx.x; j < width; j += blockDim.x)
            if (j < limit && (!keys || keys[j])) maximum = fmaxf(maximum, to_float(src[j]) * scale);
        maximum = block_max(maximum, shared);
        float sum = 0.0f;
        for (long long j = threadIdx.x; j < width; j += blockDim.x)
            if (j < limit && (!keys || keys[j]) && maximum > NEG_INF) sum += expf(to_float(src[j]) * scale - maximum);
        sum = block_sum(sum, shared);
        for (long long j = threadIdx.x; j < width; j += blockDim.x) {
            bool visible = j < limit && (!keys || keys[j]) && maximum > NEG_INF;
            dst[j] = from_float<T>(visible ? expf(to_float(src[j]) * scale - maximum) / sum : 0.0f);
        }
    }

    // LayerNorm over rows (two passes, float32 statistics).
    template <typename T>
    __device__ void layer_norm_body(const T* x, const T* weight, const T* bias, T* out, long long width, float eps) {
        __shared__ float shared[256];
        const T* row = x + blockIdx.x * width;
        T* dst = out + blockIdx.x * width;
        float sum = 0.0f;
        for (long long j = threadIdx.x; j < width; j += blockDim.x) sum += to_float(row[j]);
        float mean = block_sum(sum, shared) / (float)width;
        float squares = 0.0f;
        for (long long j = threadIdx.x; j < width; j += blockDim.x) { float d = to_float(row[j]) - mean; squares += d * d; }
        float inverse = rsqrtf(block_sum(squares, shared) / (float)width + eps);
        for (long long j = threadIdx.x; j < width; j += blockDim.x) {
            float y = (to_float(row[j]) - mean) * inverse;
            if (weight) y *= to_float(weight[j]);
            if (bias) y += to_float(bias[j]);
            dst[j] = from_float<T>(y);
        }
    }

    // GroupNorm: one block per (item, group) of `per_group` channels × `spatial` values.
    template <typename T>
    __device__ void group_norm_body(const T* x, const T* weight, const T* bias, T* out, long long groups,
                                    long long per_group, long long spatial, float eps) {
        __shared__ float shared[256];
        long long item = blockIdx.x / groups, group = blockIdx.x % groups;
        long long channels = groups * per_group, size = per_group * spatial;
        long long base = (item * channels + group * per_group) * spatial;
        float sum = 0.0f;
        for (long long j = threadIdx.x; j < size; j += blockDim.x) sum += to_float(x[base + j]);
        float mean = block_sum(sum, shared) / (float)size;
        float squares = 0.0f;
        for (long long j = threadIdx.x; j < size; j += blockDim.x) { float d = to_float(x[base + j]) - mean; squares += d * d; }
        float inverse = rsqrtf(block_sum(squares, shared) / (float)size + eps);
        for (long long j = threadIdx.x; j < size; j += blockDim.x) {
            long long channel = group * per_group + j / spatial;
            float y = (to_float(x[base + j]) - mean) * inverse;
            if (weight) y *= to_float(weight[channel]);
            if (bias) y += to_float(bias[channel]);
            out[base + j] = from_float<T>(y);
        }
    }

    // RoPE on x [B, L, H, D] with float32 cos/sin [L or B*L, D/2]; interleaved pairs or split halves.
    template <typename T>
    __device__ void rope_body(const T* x, const float* cs, const float* sn, T* out, long long batch, long long length,
                              long long heads, long long dim, int per_item, int interleaved) {
        long long half = dim / 2, count = batch * length * heads * half;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
             i += (long long)gridDim.x * blockDim.x) {
            long long pair = i % half, token = i / (half * heads);
            long long base = (i / half) * dim;
            long long table = (per_item ? token : token % length) * half + pair;
            long long ia = interleaved ? base + 2 * pair : base + pair;
            long long ib = interleaved ? base + 2 * pair + 1 : base + pair + half;
            float a = to_float(x[ia]), b = to_float(x[ib]), c = cs[table], s = sn[table];
            out[ia] = from_float<T>(a * c - b * s);
            out[ib] = from_float<T>(a * s + b * c);
        }
    }

    // im2col for one image [C, H, W] → [C·kh·kw, oh·ow].
    template <typename T>
    __device__ void im2col_body(const T* image, T* cols, long long c, long long h, long long w, long long kh, long long kw,
                                long long stride, long long padding, long long oh, long long ow) {
        long long count = c * kh * kw * oh * ow;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
             i += (long long)gridDim.x * blockDim.x) {
            long long ox = i % ow, rest = i / ow;
            long long oy = rest % oh, p = rest / oh;
            long long kx = p % kw, ky = (p / kw) % kh, channel = p / (kw * kh);
            long long iy = oy * stride - padding + ky, ix = ox * stride - padding + kx;
            cols[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? image[(channel * h + iy) * w + ix] : from_float<T>(0.0f);
        }
    }
    """#

    /// The whole kernel library: prelude plus one `extern "C"` entry point per op and dtype.
    public static var source: String {
        var lines = [prelude]
        for (_, cType, suffix) in types {
            lines.append("""
            extern "C" __global__ void binary_\(suffix)(int op, const \(cType)* a, const \(cType)* b, \(cType)* out, Broadcast g) { binary_body<\(cType)>(op, a, b, out, g); }
            extern "C" __global__ void unary_\(suffix)(int op, const \(cType)* x, \(cType)* out, long long n) { unary_body<\(cType)>(op, x, out, n); }
            extern "C" __global__ void affine_\(suffix)(const \(cType)* x, \(cType)* out, long long n, float scale, float shift) { affine_body<\(cType)>(x, out, n, scale, shift); }
            extern "C" __global__ void rms_norm_\(suffix)(const \(cType)* x, const \(cType)* w, \(cType)* out, long long width, float eps) { rms_norm_body<\(cType)>(x, w, out, width, eps); }
            extern "C" __global__ void softmax_\(suffix)(const \(cType)* x, \(cType)* out, long long width, float scale, const unsigned char* mask, long long rows_per_item, long long queries, int causal) { softmax_body<\(cType)>(x, out, width, scale, mask, rows_per_item, queries, causal); }
            extern "C" __global__ void layer_norm_\(suffix)(const \(cType)* x, const \(cType)* w, const \(cType)* b, \(cType)* out, long long width, float eps) { layer_norm_body<\(cType)>(x, w, b, out, width, eps); }
            extern "C" __global__ void group_norm_\(suffix)(const \(cType)* x, const \(cType)* w, const \(cType)* b, \(cType)* out, long long groups, long long per_group, long long spatial, float eps) { group_norm_body<\(cType)>(x, w, b, out, groups, per_group, spatial, eps); }
            extern "C" __global__ void rope_\(suffix)(const \(cType)* x, const float* c, const float* s, \(cType)* out, long long batch, long long length, long long heads, long long dim, int per_item, int interleaved) { rope_body<\(cType)>(x, c, s, out, batch, length, heads, dim, per_item, interleaved); }
            extern "C" __global__ void im2col_\(suffix)(const \(cType)* image, \(cType)* cols, long long c, long long h, long long w, long long kh, long long kw, long long stride, long long padding, long long oh, long long ow) { im2col_body<\(cType)>(image, cols, c, h, w, kh, kw, stride, padding, oh, ow); }
            """)
            for (_, target, targetSuffix) in types where targetSuffix != suffix {
                lines.append("""
                extern "C" __global__ void cast_\(suffix)_to_\(targetSuffix)(const \(cType)* x, \(target)* out, long long n) { cast_body<\(cType), \(target)>(x, out, n); }
                """)
            }
        }
        for (type, name) in [("unsigned char", "b1"), ("unsigned short", "b2"), ("unsigned int", "b4"),
                             ("unsigned long long", "b8")] {
            lines.append("""
            extern "C" __global__ void copy_\(name)(const \(type)* in, \(type)* out, Copy g) { copy_body<\(type)>(in, out, g); }
            extern "C" __global__ void upsample_\(name)(const \(type)* in, \(type)* out, long long planes, long long h, long long w) { upsample_body<\(type)>(in, out, planes, h, w); }
            extern "C" __global__ void gather_\(name)(const \(type)* table, const int* ids, \(type)* out, long long count, long long width) { gather_body<\(type)>(table, ids, out, count, width); }
            """)
        }
        // One program: the headers (bf16.cuh) come first in KernelSources, so the files' own
        // #include lines (there for CuPy, which compiles a file alone) are dropped.
        lines += KernelSources.files.map { file in
            file.source.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("#include \"") }.joined(separator: "\n")
        }
        return lines.joined(separator: "\n")
    }

    /// The embedded `.cuh` and `.cu` files as (file name, text), for the staleness test.
    public static var embeddedFiles: [(name: String, source: String)] { KernelSources.files }

    /// The kernels of the `.cu` files (Kernels/, embedded in KernelSources).
    public static let fusedEntryPoints = [
        "flash_attention_bf16_m64_n64", "flash_attention_bf16_m128_n64_w4",
        "rms_norm_scale_bf16", "gated_rms_norm_residual_bf16", "rms_norm_rope_bf16", "silu_mul_bf16",
        "gn_partial_bf16", "gn_finalize", "gn_apply_bf16",
        "nchw_to_nhwc_b2", "nhwc_to_nchw_bf16", "nhwc_to_nchw_f16", "rgb8_bf16", "rgb8_f16", "rgb8_f32", "quantize_rows_e4m3_bf16", "quantize_rows_e4m3_bf16_r1", "quantize_rows_e4m3_bf16_r2",
        "quantize_rows_e4m3_bf16_r4", "scale_rows_columns_bf16", "rms_norm_scale_e4m3_bf16_r1",
        "rms_norm_scale_e4m3_bf16_r2",
        "quantize_rows_i8_bf16", "dequantize_rows_i8_bf16", "dequantize_rows_i8_f16", "dequantize_rows_i8_f32",
        "dequantize_rows_e4m3_bf16", "dequantize_rows_e4m3_f16", "dequantize_rows_e4m3_f32",
    ]

    /// The name of every `extern "C"` kernel in `source`.
    public static var entryPoints: [String] {
        types.flatMap { type in
            ["binary", "unary", "affine", "rms_norm", "softmax", "layer_norm", "group_norm", "rope", "im2col"]
                .map { "\($0)_\(type.suffix)" }
                + types.filter { $0.suffix != type.suffix }.map { "cast_\(type.suffix)_to_\($0.suffix)" }
        } + ["b1", "b2", "b4", "b8"].flatMap { ["copy_\($0)", "upsample_\($0)", "gather_\($0)"] } + fusedEntryPoints
    }

    /// Options passed to NVRTC for the kernel library.
    public static let compileOptions = ["--std=c++17"]
}
