// Weight storage formats read by a dense GEMM (weight-only quantisation):
//  - int8 rows (`--precision int8`): each row of a bf16 weight scaled by its own largest magnitude,
//      amax = max |w[r, :]|,  scale[r] = amax / 127   (1 for a zero row)
//      q[r, c] = clamp(round-half-even(w[r, c] / scale[r]), ±127)   (NaN → 0)
//    both divisions IEEE float32 (__fdiv_rn), so the codes equal the host's Int8Symmetric bit for bit;
//  - widening: int8 or FP8 e4m3 rows back to bf16 / f16 / f32, out[r, c] = r(float(q[r, c]) · scale[r])
//    (one float32 product, rounded once), into a scratch weight for cuBLASLt's dense GEMM. For FP8 this
//    is the path of GPUs without FP8 tensor cores (compute capability < 8.9).
//
// The bf16 helpers come from bf16.cuh (CuPy compiles the file alone with this folder on the
// include path).

#include "bf16.cuh"

// One value as an int8 code of a row with scale `scale` (as Int8Symmetric.encode).
__device__ __forceinline__ unsigned wf_int8_code(float value, float scale) {
    const float q = rintf(__fdiv_rn(value, scale));
    if (q != q) return 0u;                                          // NaN
    return (unsigned)(int)fminf(fmaxf(q, -127.0f), 127.0f) & 0xffu;
}

// One block a row (grid = rows), columns % 8 == 0 (checked by the host). Runs at load only, so the
// row is simply read twice (its amax, then its codes).
extern "C" __global__ void quantize_rows_i8_bf16(const unsigned short* x, unsigned char* q, float* scale,
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
    const float rowScale = amax > 0.0f ? __fdiv_rn(amax, 127.0f) : 1.0f;
    if (threadIdx.x == 0) scale[blockIdx.x] = rowScale;
    for (long long c = threadIdx.x * 8ll; c < columns; c += blockDim.x * 8ll) {
        const uint4 raw = *(const uint4*)(row + c);
        const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
        unsigned packed[2] = {0u, 0u};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const unsigned lo = wf_int8_code(bf16_to_float((unsigned short)(words[i] & 0xffffu)), rowScale);
            const unsigned hi = wf_int8_code(bf16_to_float((unsigned short)(words[i] >> 16)), rowScale);
            packed[i >> 1] |= (lo | (hi << 8)) << (16 * (i & 1));
        }
        *(uint2*)(out + c) = make_uint2(packed[0], packed[1]);
    }
}

// The value of e4m3 bits (as Float8E4M3.decode): exact in float32.
__device__ __forceinline__ float wf_e4m3_value(unsigned byte) {
    const unsigned sign = (byte & 0x80u) << 24, exponent = (byte >> 3) & 0xfu, mantissa = byte & 7u;
    if (exponent == 15u && mantissa == 7u) return __uint_as_float(sign | 0x7fc00000u);      // NaN
    if (exponent == 0u) return (sign ? -1.0f : 1.0f) * ((float)mantissa * 0.001953125f);   // subnormal: m · 2^-9
    return __uint_as_float(sign | ((exponent + 120u) << 23) | (mantissa << 20));
}

__device__ __forceinline__ float wf_int8_value(unsigned byte) { return (float)(int)(signed char)(unsigned char)byte; }

// Four widened values stored at element `index` (a multiple of 4) of a row-major output:
// OUT 0 = bf16, 1 = f16, 2 = f32.
template <int OUT>
__device__ __forceinline__ void wf_store4(void* out, long long index, const float v[4]) {
    if (OUT == 2) {
        *(float4*)((float*)out + index) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
        unsigned short b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) b[i] = OUT == 0 ? float_to_bf16(v[i]) : float_to_f16(v[i]);
        *(uint2*)((unsigned short*)out + index) =
            make_uint2((unsigned)b[0] | ((unsigned)b[1] << 16), (unsigned)b[2] | ((unsigned)b[3] << 16));
    }
}

// out[r, c] = r(value(q[r, c]) · scale[r]) over rows × columns (columns % 4 == 0), grid-stride over
// groups of 4 codes (one 32-bit load). FP8 selects the e4m3 decoding, else int8.
template <bool FP8, int OUT>
__device__ __forceinline__ void wf_widen(const unsigned char* q, const float* scale, void* out, long long rows,
                                         long long columns) {
    const long long groups = rows * columns / 4;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < groups;
         g += (long long)gridDim.x * blockDim.x) {
        const long long index = g * 4, r = index / columns;
        const unsigned word = *(const unsigned*)(q + index);
        const float s = scale[r];
        float v[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const unsigned byte = (word >> (8 * i)) & 0xffu;
            v[i] = (FP8 ? wf_e4m3_value(byte) : wf_int8_value(byte)) * s;
        }
        wf_store4<OUT>(out, index, v);
    }
}

extern "C" __global__ void dequantize_rows_i8_bf16(const unsigned char* q, const float* scale, unsigned short* out,
                                                   long long rows, long long columns) {
    wf_widen<false, 0>(q, scale, out, rows, columns);
}
extern "C" __global__ void dequantize_rows_i8_f16(const unsigned char* q, const float* scale, unsigned short* out,
                                                  long long rows, long long columns) {
    wf_widen<false, 1>(q, scale, out, rows, columns);
}
extern "C" __global__ void dequantize_rows_i8_f32(const unsigned char* q, const float* scale, float* out,
                                                  long long rows, long long columns) {
    wf_widen<false, 2>(q, scale, out, rows, columns);
}
extern "C" __global__ void dequantize_rows_e4m3_bf16(const unsigned char* q, const float* scale, unsigned short* out,
                                                     long long rows, long long columns) {
    wf_widen<true, 0>(q, scale, out, rows, columns);
}
extern "C" __global__ void dequantize_rows_e4m3_f16(const unsigned char* q, const float* scale, unsigned short* out,
                                                    long long rows, long long columns) {
    wf_widen<true, 1>(q, scale, out, rows, columns);
}
extern "C" __global__ void dequantize_rows_e4m3_f32(const unsigned char* q, const float* scale, float* out,
                                                    long long rows, long long columns) {
    wf_widen<true, 2>(q, scale, out, rows, columns);
}
