// FP8 e4m3 quantisation for the FP8 linear layers: each row of a bf16 matrix (a token's
// activations, or an output channel of a weight) scaled onto ±448 by its own largest magnitude:
//   amax = max |x[r, :]|,  inv = 448 / amax,  scale[r] = amax / 448   ((1, 1) for a zero row)
//   q[r, c] = e4m3(x[r, c] · inv)   (round to nearest even, saturating at ±448)
// cuBLASLt then multiplies the e4m3 matrices with the row scales as outer-vector scales.
// The encoding is done with integer steps (not cvt.satfinite, which needs sm_89) so that it
// compiles for every architecture and equals the host's Float8E4M3.encode bit for bit.
//
// The bf16 helpers come from bf16.cuh (CuPy compiles the file alone with this folder on the
// include path).

#include "bf16.cuh"

__device__ __forceinline__ unsigned qz_e4m3(float value) {
    const unsigned bits = __float_as_uint(value);
    const unsigned sign = (bits >> 24) & 0x80u, magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return 0x7fu;                       // NaN
    if (magnitude > 0x43e00000u) return sign | 0x7eu;                // beyond 448: saturate
    if (magnitude < 0x3c800000u)                                     // subnormal: steps of 2^-9
        return sign | (unsigned)rintf(__uint_as_float(magnitude) * 512.0f);
    unsigned exponent = (magnitude >> 23) - 120u;
    const unsigned mantissa = magnitude & 0x7fffffu, rest = mantissa & 0xfffffu;
    unsigned kept = mantissa >> 20;
    if (rest > 0x80000u || (rest == 0x80000u && (kept & 1u))) ++kept;
    if (kept == 8u) { kept = 0u; ++exponent; }
    return sign | (exponent << 3) | kept;
}

// Eight bf16 (one uint4) times `factor`, as eight e4m3 codes (one uint2) in the same order.
__device__ __forceinline__ uint2 qz_pack8(uint4 raw, float factor) {
    const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
    unsigned packed[2] = {0u, 0u};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const unsigned lo = qz_e4m3(bf16_to_float((unsigned short)(words[i] & 0xffffu)) * factor);
        const unsigned hi = qz_e4m3(bf16_to_float((unsigned short)(words[i] >> 16)) * factor);
        packed[i >> 1] |= (lo | (hi << 8)) << (16 * (i & 1));
    }
    return make_uint2(packed[0], packed[1]);
}

// The tail both register kernels share: the row's amax over the block, its scale written, and the
// V groups of 8 a thread holds (group v at column (threadIdx.x + v·blockDim.x)·8) quantised.
template <int V>
__device__ __forceinline__ void qz_store_held(const uint4* held, float amax, unsigned char* out, float* scale,
                                              long long columns) {
    amax = block_max_all(amax);
    const float factor = amax > 0.0f ? 448.0f / amax : 1.0f;
    if (threadIdx.x == 0) scale[blockIdx.x] = amax > 0.0f ? amax / 448.0f : 1.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) {
        const long long c = (threadIdx.x + (long long)v * blockDim.x) * 8;
        if (c < columns) *(uint2*)(out + c) = qz_pack8(held[v], factor);
    }
}

// One block a row (grid = rows), columns % 8 == 0 (checked by the host).
extern "C" __global__ void quantize_rows_e4m3_bf16(const unsigned short* x, unsigned char* q, float* scale,
                                                   long long columns) {
    const unsigned short* row = x + (long long)blockIdx.x * columns;
    unsigned char* out = q + (long long)blockIdx.x * columns;
    float amax = 0.0f;
    for (long long c = threadIdx.x * 8ll; c < columns; c += blockDim.x * 8ll) {
        const uint4 raw = *(const uint4*)(row + c);
        const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            amax = fmaxf(amax, fabsf(bf16_to_float((unsigned short)(words[i] & 0xffffu))));
            amax = fmaxf(amax, fabsf(bf16_to_float((unsigned short)(words[i] >> 16))));
        }
    }
    amax = block_max_all(amax);
    const float inverse = amax > 0.0f ? 448.0f / amax : 1.0f;
    if (threadIdx.x == 0) scale[blockIdx.x] = amax > 0.0f ? amax / 448.0f : 1.0f;
    for (long long c = threadIdx.x * 8ll; c < columns; c += blockDim.x * 8ll) {
        const uint4 raw = *(const uint4*)(row + c);
        *(uint2*)(out + c) = qz_pack8(raw, inverse);
    }
}

// The same in one read: each thread keeps its V groups of 8 in registers between the row's
// amax and the quantisation (blockDim.x · 8 · V ≥ columns, chosen by the host).
template <int V>
__device__ __forceinline__ void quantize_rows_registers(const unsigned short* x, unsigned char* q, float* scale,
                                                        long long columns) {
    const unsigned short* row = x + (long long)blockIdx.x * columns;
    unsigned char* out = q + (long long)blockIdx.x * columns;
    uint4 held[V];
    float amax = 0.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) {
        const long long c = (threadIdx.x + (long long)v * blockDim.x) * 8;
        held[v] = c < columns ? *(const uint4*)(row + c) : make_uint4(0u, 0u, 0u, 0u);
        const unsigned words[4] = {held[v].x, held[v].y, held[v].z, held[v].w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            amax = fmaxf(amax, fabsf(bf16_to_float((unsigned short)(words[i] & 0xffffu))));
            amax = fmaxf(amax, fabsf(bf16_to_float((unsigned short)(words[i] >> 16))));
        }
    }
    qz_store_held<V>(held, amax, out, scale, columns);
}

extern "C" __global__ void quantize_rows_e4m3_bf16_r1(const unsigned short* x, unsigned char* q, float* scale,
                                                      long long columns) {
    quantize_rows_registers<1>(x, q, scale, columns);
}
extern "C" __global__ void quantize_rows_e4m3_bf16_r2(const unsigned short* x, unsigned char* q, float* scale,
                                                      long long columns) {
    quantize_rows_registers<2>(x, q, scale, columns);
}
extern "C" __global__ void quantize_rows_e4m3_bf16_r4(const unsigned short* x, unsigned char* q, float* scale,
                                                      long long columns) {
    quantize_rows_registers<4>(x, q, scale, columns);
}

// rms_norm_scale_bf16 (fused_elementwise.cu) and quantize_rows_e4m3_bf16 in one kernel, for a norm
// whose only reader is an FP8 linear layer: y = r(r(r(x·inv)·w)·s) stays in registers, then its row
// is quantised. Bit-equal to the two kernels in sequence when launched, like rms_norm_scale_bf16,
// with 256 threads (the same sum order): one block a row, V groups of 8 a thread (width ≤ 2048·V).
template <int V>
__device__ __forceinline__ void rms_norm_scale_e4m3_body(const unsigned short* x, const unsigned short* weight,
                                                         const unsigned short* scaleRow, unsigned char* q,
                                                         float* scale, long long width, float eps) {
    const unsigned short* row = x + (long long)blockIdx.x * width;
    unsigned char* out = q + (long long)blockIdx.x * width;
    uint4 held[V];
    float sum = 0.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) {
        const long long c = (threadIdx.x + (long long)v * blockDim.x) * 8;
        held[v] = c < width ? *(const uint4*)(row + c) : make_uint4(0u, 0u, 0u, 0u);
        const unsigned words[4] = {held[v].x, held[v].y, held[v].z, held[v].w};
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const float f = bf16_to_float((unsigned short)((words[i >> 1] >> (16 * (i & 1))) & 0xffffu));
            sum += f * f;
        }
    }
    const float inverse = rsqrtf(block_sum_all(sum) / (float)width + eps);
    float amax = 0.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) {
        const long long c = (threadIdx.x + (long long)v * blockDim.x) * 8;
        if (c >= width) continue;
        unsigned words[4] = {held[v].x, held[v].y, held[v].z, held[v].w};
        const uint4 wr = weight ? *(const uint4*)(weight + c) : make_uint4(0u, 0u, 0u, 0u);
        const uint4 sr = scaleRow ? *(const uint4*)(scaleRow + c) : make_uint4(0u, 0u, 0u, 0u);
        const unsigned ws[4] = {wr.x, wr.y, wr.z, wr.w}, ss[4] = {sr.x, sr.y, sr.z, sr.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            unsigned packed = 0u;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float n = bf16_round(bf16_to_float((unsigned short)((words[i] >> (16 * h)) & 0xffffu)) * inverse);
                if (weight) n = bf16_round(n * bf16_to_float((unsigned short)((ws[i] >> (16 * h)) & 0xffffu)));
                if (scaleRow) n = bf16_round(n * bf16_to_float((unsigned short)((ss[i] >> (16 * h)) & 0xffffu)));
                amax = fmaxf(amax, fabsf(n));
                packed |= (unsigned)float_to_bf16(n) << (16 * h);
            }
            words[i] = packed;
        }
        held[v] = make_uint4(words[0], words[1], words[2], words[3]);
    }
    qz_store_held<V>(held, amax, out, scale, width);
}

extern "C" __global__ void rms_norm_scale_e4m3_bf16_r1(const unsigned short* x, const unsigned short* weight,
                                                       const unsigned short* scaleRow, unsigned char* q, float* scale,
                                                       long long width, float eps) {
    rms_norm_scale_e4m3_body<1>(x, weight, scaleRow, q, scale, width, eps);
}
extern "C" __global__ void rms_norm_scale_e4m3_bf16_r2(const unsigned short* x, const unsigned short* weight,
                                                       const unsigned short* scaleRow, unsigned char* q, float* scale,
                                                       long long width, float eps) {
    rms_norm_scale_e4m3_body<2>(x, weight, scaleRow, q, scale, width, eps);
}

// out[r, c] = r(float(y[r, c]) · row[r] · column[c] (+ bias[c])), in place, bf16, columns % 8 == 0:
// the FP8 product's scales applied after an unscaled GEMM, where cuBLASLt has no outer-vector
// scaling. Grid-stride over groups of 8 elements.
extern "C" __global__ void scale_rows_columns_bf16(unsigned short* y, const float* row, const float* column,
                                                   const unsigned short* bias, long long rows, long long columns) {
    const long long groups = rows * columns / 8;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < groups;
         g += (long long)gridDim.x * blockDim.x) {
        const long long r = g * 8 / columns, c0 = g * 8 % columns;
        uint4 raw = *(uint4*)(y + g * 8);
        unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
        const float rs = row[r];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            unsigned out = 0u;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const long long c = c0 + 2 * i + h;
                float v = bf16_to_float((unsigned short)((words[i] >> (16 * h)) & 0xffffu)) * rs * column[c];
                if (bias != nullptr) v += bf16_to_float(bias[c]);
                unsigned u = __float_as_uint(v);
                if ((u & 0x7fffffffu) > 0x7f800000u) u = 0x7fc00000u; else u += 0x7fffu + ((u >> 16) & 1u);
                out |= (u >> 16) << (16 * h);
            }
            words[i] = out;
        }
        *(uint4*)(y + g * 8) = make_uint4(words[0], words[1], words[2], words[3]);
    }
}
