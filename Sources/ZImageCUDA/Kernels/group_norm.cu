// GroupNorm over [N, C, spatial] in bf16, optionally followed by SiLU, in three launches that
// fill the GPU at any size (a group of the VAE at 1024² holds 16 channels × 1024² values):
// 1. gn_partial_bf16: grid (chunks, N·groups); each block reduces one chunk of a group to its
//    mean and M2 (sum of squared deviations from the chunk's own mean: no cancellation);
// 2. gn_finalize: one thread per group merges the chunks (Chan et al.) into mean and 1/σ (biased
//    variance, as PyTorch);
// 3. gn_apply_bf16: y = (x − mean)/σ · w + b rounded once to bf16 (PyTorch's bf16 GroupNorm), and
//    with SiLU: r(silu(r(y))) as F.silu on the bf16 result.
// Requires group sizes and chunk sizes that are multiples of 8 and spatial % 8 == 0 (checked by
// the host); vectors of 8 bf16 never cross a channel. The bf16 helpers come from bf16.cuh.

#include "bf16.cuh"

__device__ __forceinline__ void gn_unpack(uint4 raw, float* v) {
    v[0] = bf16_to_float(raw.x & 0xffff); v[1] = bf16_to_float(raw.x >> 16); v[2] = bf16_to_float(raw.y & 0xffff);
    v[3] = bf16_to_float(raw.y >> 16); v[4] = bf16_to_float(raw.z & 0xffff); v[5] = bf16_to_float(raw.z >> 16);
    v[6] = bf16_to_float(raw.w & 0xffff); v[7] = bf16_to_float(raw.w >> 16);
}

// partial [N·groups, chunks, 2] = (chunk mean, chunk M2).
extern "C" __global__ void gn_partial_bf16(const unsigned short* x, float* partial, long long group_size,
                                           long long chunk_size) {
    __shared__ float scratch[32];
    const long long group = blockIdx.y, chunk = blockIdx.x;
    const long long begin = chunk * chunk_size;
    const long long count = min(chunk_size, group_size - begin);
    const unsigned short* base = x + group * group_size + begin;
    float sum = 0.0f;
    for (long long j = threadIdx.x * 8; j < count; j += blockDim.x * 8) {
        float v[8];
        gn_unpack(*(const uint4*)(base + j), v);
#pragma unroll
        for (int e = 0; e < 8; ++e) sum += v[e];
    }
    const float mean = block_sum_into(sum, scratch) / (float)count;
    float squares = 0.0f;
    for (long long j = threadIdx.x * 8; j < count; j += blockDim.x * 8) {
        float v[8];
        gn_unpack(*(const uint4*)(base + j), v);
#pragma unroll
        for (int e = 0; e < 8; ++e) { float d = v[e] - mean; squares += d * d; }
    }
    const float m2 = block_sum_into(squares, scratch);
    if (threadIdx.x == 0) {
        partial[(group * gridDim.x + chunk) * 2] = mean;
        partial[(group * gridDim.x + chunk) * 2 + 1] = m2;
    }
}

// stats [N·groups, 2] = (mean, 1/sqrt(var + eps)).
extern "C" __global__ void gn_finalize(const float* partial, float* stats, long long groups, long long group_size,
                                       long long chunk_size, int chunks, float eps) {
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < groups;
         g += (long long)gridDim.x * blockDim.x) {
        double n = 0.0, mean = 0.0, m2 = 0.0;
        for (int c = 0; c < chunks; ++c) {
            const double nb = (double)min(chunk_size, group_size - (long long)c * chunk_size);
            const double mb = partial[(g * chunks + c) * 2], m2b = partial[(g * chunks + c) * 2 + 1];
            const double total = n + nb, delta = mb - mean;
            mean += delta * nb / total;
            m2 += m2b + delta * delta * n * nb / total;
            n = total;
        }
        stats[g * 2] = (float)mean;
        stats[g * 2 + 1] = rsqrtf((float)(m2 / n) + eps);
    }
}

extern "C" __global__ void gn_apply_bf16(const unsigned short* x, const float* stats, const unsigned short* weight,
                                         const unsigned short* bias, unsigned short* out, long long count,
                                         long long channels, long long per_group, long long spatial, int silu) {
    for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * 8; i < count;
         i += (long long)gridDim.x * blockDim.x * 8) {
        const long long plane = i / spatial;              // n·C + c
        const long long channel = plane % channels;
        const long long group = plane / per_group;        // n·groups + g (channels = groups·per_group)
        const float mean = stats[group * 2], inverse = stats[group * 2 + 1];
        const float w = weight ? bf16_to_float(weight[channel]) : 1.0f, b = bias ? bf16_to_float(bias[channel]) : 0.0f;
        float v[8];
        gn_unpack(*(const uint4*)(x + i), v);
        unsigned short r[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            float y = (v[e] - mean) * inverse * w + b;
            if (silu) { y = bf16_to_float(float_to_bf16(y)); y = y / (1.0f + expf(-y)); }
            r[e] = float_to_bf16(y);
        }
        uint4 packed;
        packed.x = r[0] | ((unsigned)r[1] << 16); packed.y = r[2] | ((unsigned)r[3] << 16);
        packed.z = r[4] | ((unsigned)r[5] << 16); packed.w = r[6] | ((unsigned)r[7] << 16);
        *(uint4*)(out + i) = packed;
    }
}
