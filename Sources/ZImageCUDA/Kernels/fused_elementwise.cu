// Fused bf16 passes of the DiT block: each replaces two to four separate kernels and rounds to
// bf16 exactly where the reference (diffusers 0.42.1 in bf16) rounds, so the result equals the
// composed ops' bit for bit up to float32 summation order in the norm statistics.
//
// - rms_norm_scale_bf16:         y = r(r(r(x·inv)·w)·s)            (RMSNorm, then · (1 + scale))
// - gated_rms_norm_residual_bf16: y = r(x + r(gate · r(r(v·inv)·w))) (residual of a sandwich norm)
// - rms_norm_rope_bf16:          y = r(rope(r(r(x·inv)·w)))         (q/k norm and interleaved RoPE)
// - silu_mul_bf16:               y = r(r(silu(a)) · b)              (SwiGLU gate)
// where r() rounds to bf16 and inv = rsqrt(mean(x²) + eps) in float32.
//
// The bf16 helpers come from bf16.cuh (CuPy compiles the file alone with this folder on the
// include path).

#include "bf16.cuh"

// 8 bf16 at a time; rows must be 16-byte aligned (width % 8 == 0, checked by the host).
struct fe_vec8 { unsigned short v[8]; };
__device__ __forceinline__ fe_vec8 fe_load8(const unsigned short* p) {
    uint4 raw = *(const uint4*)p;
    fe_vec8 r;
    r.v[0] = raw.x & 0xffff; r.v[1] = raw.x >> 16; r.v[2] = raw.y & 0xffff; r.v[3] = raw.y >> 16;
    r.v[4] = raw.z & 0xffff; r.v[5] = raw.z >> 16; r.v[6] = raw.w & 0xffff; r.v[7] = raw.w >> 16;
    return r;
}
__device__ __forceinline__ void fe_store8(unsigned short* p, const fe_vec8& r) {
    uint4 raw;
    raw.x = r.v[0] | ((unsigned)r.v[1] << 16); raw.y = r.v[2] | ((unsigned)r.v[3] << 16);
    raw.z = r.v[4] | ((unsigned)r.v[5] << 16); raw.w = r.v[6] | ((unsigned)r.v[7] << 16);
    *(uint4*)p = raw;
}

__device__ __forceinline__ float fe_inverse_rms(const unsigned short* row, long long width, float eps) {
    float sum = 0.0f;
    for (long long j = threadIdx.x * 8; j < width; j += blockDim.x * 8) {
        fe_vec8 x = fe_load8(row + j);
#pragma unroll
        for (int e = 0; e < 8; ++e) { float f = bf16_to_float(x.v[e]); sum += f * f; }
    }
    return rsqrtf(block_sum_all(sum) / (float)width + eps);
}

// One block per row. weight [width] or null; scale [width] (shared by all rows) or null.
extern "C" __global__ void rms_norm_scale_bf16(const unsigned short* x, const unsigned short* weight,
                                               const unsigned short* scale, unsigned short* out, long long width,
                                               float eps) {
    const unsigned short* row = x + blockIdx.x * width;
    unsigned short* destination = out + blockIdx.x * width;
    const float inverse = fe_inverse_rms(row, width, eps);
    for (long long j = threadIdx.x * 8; j < width; j += blockDim.x * 8) {
        fe_vec8 v = fe_load8(row + j), y;
        fe_vec8 w, s;
        if (weight) w = fe_load8(weight + j);
        if (scale) s = fe_load8(scale + j);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            float n = bf16_round(bf16_to_float(v.v[e]) * inverse);
            if (weight) n = bf16_round(n * bf16_to_float(w.v[e]));
            if (scale) n = bf16_round(n * bf16_to_float(s.v[e]));
            y.v[e] = float_to_bf16(n);
        }
        fe_store8(destination + j, y);
    }
}

// out = x + gate · norm(v); gate [width] (shared by all rows) or null (gate 1).
extern "C" __global__ void gated_rms_norm_residual_bf16(const unsigned short* x, const unsigned short* v,
                                                        const unsigned short* weight, const unsigned short* gate,
                                                        unsigned short* out, long long width, float eps) {
    const unsigned short* residual = x + blockIdx.x * width;
    const unsigned short* row = v + blockIdx.x * width;
    unsigned short* destination = out + blockIdx.x * width;
    const float inverse = fe_inverse_rms(row, width, eps);
    for (long long j = threadIdx.x * 8; j < width; j += blockDim.x * 8) {
        fe_vec8 a = fe_load8(row + j), r = fe_load8(residual + j), y;
        fe_vec8 w, s;
        if (weight) w = fe_load8(weight + j);
        if (gate) s = fe_load8(gate + j);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            float n = bf16_round(bf16_to_float(a.v[e]) * inverse);
            if (weight) n = bf16_round(n * bf16_to_float(w.v[e]));
            if (gate) n = bf16_round(n * bf16_to_float(s.v[e]));
            y.v[e] = float_to_bf16(bf16_to_float(r.v[e]) + n);
        }
        fe_store8(destination + j, y);
    }
}

// x [rows = tokens·heads, 128]: one warp per head vector, 4 elements a lane (two adjacent pairs).
// cos/sin float32 [tokens, 64]; row r belongs to token r / heads.
extern "C" __global__ void rms_norm_rope_bf16(const unsigned short* x, const unsigned short* weight,
                                              const float* cosines, const float* sines, unsigned short* out,
                                              long long rows, long long heads, float eps) {
    const int lane = threadIdx.x & 31;
    const long long row = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const unsigned short* source = x + row * 128 + lane * 4;
    uint2 raw = *(const uint2*)source;
    float v[4] = {bf16_to_float(raw.x & 0xffff), bf16_to_float(raw.x >> 16), bf16_to_float(raw.y & 0xffff), bf16_to_float(raw.y >> 16)};
    float sum = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3];
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    const float inverse = rsqrtf(sum / 128.0f + eps);
    uint2 wraw = weight ? *(const uint2*)(weight + lane * 4) : make_uint2(0, 0);
    const float w[4] = {bf16_to_float(wraw.x & 0xffff), bf16_to_float(wraw.x >> 16), bf16_to_float(wraw.y & 0xffff),
                        bf16_to_float(wraw.y >> 16)};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        v[e] = bf16_round(v[e] * inverse);
        if (weight) v[e] = bf16_round(v[e] * w[e]);
    }
    const long long token = row / heads;
    const float2 c = *(const float2*)(cosines + token * 64 + lane * 2);
    const float2 s = *(const float2*)(sines + token * 64 + lane * 2);
    const float y0 = v[0] * c.x - v[1] * s.x, y1 = v[0] * s.x + v[1] * c.x;
    const float y2 = v[2] * c.y - v[3] * s.y, y3 = v[2] * s.y + v[3] * c.y;
    uint2 result;
    result.x = float_to_bf16(y0) | ((unsigned)float_to_bf16(y1) << 16);
    result.y = float_to_bf16(y2) | ((unsigned)float_to_bf16(y3) << 16);
    *(uint2*)(out + row * 128 + lane * 4) = result;
}

// out = silu(a) · b over `count` elements (count % 8 == 0).
extern "C" __global__ void silu_mul_bf16(const unsigned short* a, const unsigned short* b, unsigned short* out,
                                         long long count) {
    for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * 8; i < count;
         i += (long long)gridDim.x * blockDim.x * 8) {
        fe_vec8 x = fe_load8(a + i), y = fe_load8(b + i), r;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            float f = bf16_to_float(x.v[e]);
            r.v[e] = float_to_bf16(bf16_round(f / (1.0f + expf(-f))) * bf16_to_float(y.v[e]));
        }
        fe_store8(out + i, r);
    }
}
