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
            """)
            for (_, target, targetSuffix) in types where targetSuffix != suffix {
                lines.append("""
                extern "C" __global__ void cast_\(suffix)_to_\(targetSuffix)(const \(cType)* x, \(target)* out, long long n) { cast_body<\(cType), \(target)>(x, out, n); }
                """)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The name of every `extern "C"` kernel in `source`.
    public static var entryPoints: [String] {
        types.flatMap { type in
            ["binary", "unary", "affine", "rms_norm"].map { "\($0)_\(type.suffix)" }
                + types.filter { $0.suffix != type.suffix }.map { "cast_\(type.suffix)_to_\($0.suffix)" }
        }
    }

    /// Options passed to NVRTC for the kernel library.
    public static let compileOptions = ["--std=c++17"]
}
