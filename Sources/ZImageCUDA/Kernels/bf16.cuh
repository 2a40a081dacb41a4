// Bit helpers and a block reduction shared by the kernel files: bf16 and f16 to and from float32
// (round to nearest even, NaN → 0x7FC0, as HalfPrecision.bfloat16Bits on the host), and a sum over
// the block. Each .cu file includes it; tools/kernels/embed_kernels.py embeds it once, ahead of the
// files, and the backend drops their #include lines (the module is one NVRTC program). CuPy
// compiles a file alone with this folder on the include path.
#ifndef ZIMAGE_BF16_CUH
#define ZIMAGE_BF16_CUH

__device__ __forceinline__ float bf16_to_float(unsigned short bits) { return __uint_as_float(((unsigned)bits) << 16); }
__device__ __forceinline__ unsigned short float_to_bf16(float value) {
    unsigned u = __float_as_uint(value);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
/// float32 → bf16 → float32: where the reference rounds an intermediate to bf16.
__device__ __forceinline__ float bf16_round(float value) { return bf16_to_float(float_to_bf16(value)); }
__device__ __forceinline__ float f16_to_float(unsigned short bits) {
    float value;
    asm("cvt.f32.f16 %0, %1;" : "=f"(value) : "h"(bits));
    return value;
}
__device__ __forceinline__ unsigned short float_to_f16(float value) {
    unsigned short bits;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(value));
    return bits;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024), in a fixed order: warps by
// shuffles, then the warps' partial sums in warp order, through `partial` (32 floats of shared
// memory). Every thread gets the total.
__device__ __forceinline__ float block_sum_into(float value, float* partial) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) partial[warp] = value;
    __syncthreads();
    float total = 0.0f;
    const int warps = blockDim.x >> 5;
    for (int i = 0; i < warps; ++i) total += partial[i];
    return total;
}

// The same through a shared buffer of its own.
__device__ __forceinline__ float block_sum_all(float value) {
    __shared__ float partial[32];
    return block_sum_into(value, partial);
}

// Largest value over the block (blockDim.x a multiple of 32, at most 1024), the same way (a row's
// amax for the quantisers). Every thread gets it.
__device__ __forceinline__ float block_max_all(float value) {
    __shared__ float partial[32];
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) partial[warp] = value;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < (int)(blockDim.x >> 5); ++i) total = fmaxf(total, partial[i]);
    return total;
}

#endif
