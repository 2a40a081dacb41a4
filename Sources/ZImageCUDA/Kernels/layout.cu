// Layout changes around cuDNN's convolutions, which run fast only channels-last (NHWC): on an
// H200 the classic API's best NCHW bf16 algorithm reaches 30 TFLOP/s on the VAE's 1024² layers,
// its NHWC one 630-770 (bench/kernels/probe_conv_fp8.py). The backend's contract stays NCHW:
// activations go to NHWC before the convolution and come back after it, with the per-channel
// bias added on the way back (float32 sum, rounded once to the element type, as PyTorch adds a
// bias to the rounded product).
//
// - nchw_to_nhwc_b2:        out[n][p][c] = in[n][c][p]            (any 2-byte type)
// - nhwc_to_nchw_{bf16,f16}: out[n][c][p] = r(in[n][p][c] + bias[c])  (bias may be null)
// Tiles of 64×64 elements through shared memory, so reads and writes are both coalesced.
//
// The bf16 helpers come from bf16.cuh (CuPy compiles the file alone with this folder on the
// include path).

#include "bf16.cuh"

#define LC_TILE 64
#define LC_PITCH 66   // 33 words a row: the transposed reads hit 32 distinct banks

// Grid (ceil(P/64), ceil(C/64), N), 256 threads. in [N][C][P] → out [N][P][C].
extern "C" __global__ void nchw_to_nhwc_b2(const unsigned short* in, unsigned short* out, long long channels,
                                           long long plane) {
    __shared__ unsigned short tile[LC_TILE][LC_PITCH];
    const long long image = (long long)blockIdx.z * channels * plane;
    const long long p0 = (long long)blockIdx.x * LC_TILE, c0 = (long long)blockIdx.y * LC_TILE;
    const int tx = threadIdx.x & 63, ty = threadIdx.x >> 6;
    for (int r = ty; r < LC_TILE; r += 4) {
        const long long c = c0 + r, p = p0 + tx;
        if (c < channels && p < plane) tile[r][tx] = in[image + c * plane + p];
    }
    __syncthreads();
    for (int r = ty; r < LC_TILE; r += 4) {
        const long long p = p0 + r, c = c0 + tx;
        if (p < plane && c < channels) out[image + p * channels + c] = tile[tx][r];
    }
}

// Grid (ceil(P/64), ceil(C/64), N), 256 threads. in [N][P][C] → out [N][C][P], + bias[c].
template <bool BF16>
__device__ __forceinline__ void nhwc_to_nchw_body(const unsigned short* in, unsigned short* out,
                                                  const unsigned short* bias, long long channels, long long plane) {
    __shared__ unsigned short tile[LC_TILE][LC_PITCH];
    const long long image = (long long)blockIdx.z * channels * plane;
    const long long p0 = (long long)blockIdx.x * LC_TILE, c0 = (long long)blockIdx.y * LC_TILE;
    const int tx = threadIdx.x & 63, ty = threadIdx.x >> 6;
    for (int r = ty; r < LC_TILE; r += 4) {
        const long long p = p0 + r, c = c0 + tx;
        if (p < plane && c < channels) tile[r][tx] = in[image + p * channels + c];
    }
    __syncthreads();
    for (int r = ty; r < LC_TILE; r += 4) {
        const long long c = c0 + r, p = p0 + tx;
        if (c >= channels || p >= plane) continue;
        unsigned short value = tile[tx][r];
        if (bias != nullptr) {
            value = BF16 ? float_to_bf16(bf16_to_float(value) + bf16_to_float(bias[c]))
                         : float_to_f16(f16_to_float(value) + f16_to_float(bias[c]));
        }
        out[image + c * plane + p] = value;
    }
}

extern "C" __global__ void nhwc_to_nchw_bf16(const unsigned short* in, unsigned short* out, const unsigned short* bias,
                                             long long channels, long long plane) {
    nhwc_to_nchw_body<true>(in, out, bias, channels, plane);
}

extern "C" __global__ void nhwc_to_nchw_f16(const unsigned short* in, unsigned short* out, const unsigned short* bias,
                                            long long channels, long long plane) {
    nhwc_to_nchw_body<false>(in, out, bias, channels, plane);
}

// The decoded image [1, 3, H, W] in [-1, 1] as 8-bit RGB, pixel-interleaved [H, W, 3]:
// round_half_even(clamp(x/2 + 0.5, 0, 1) · 255), as ZImagePipeline's host reference (FusedReference.rgb8).
template <int KIND>   // 0 bf16, 1 f16, 2 f32
__device__ __forceinline__ void rgb8_body(const void* x, unsigned char* out, long long plane) {
    for (long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x; p < plane; p += (long long)gridDim.x * blockDim.x) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
            const long long i = c * plane + p;
            float v;
            if (KIND == 0) v = bf16_to_float(((const unsigned short*)x)[i]);
            else if (KIND == 1) v = f16_to_float(((const unsigned short*)x)[i]);
            else v = ((const float*)x)[i];
            const float s = fminf(fmaxf(__fadd_rn(__fmul_rn(v, 0.5f), 0.5f), 0.0f), 1.0f);
            out[p * 3 + c] = (unsigned char)rintf(__fmul_rn(s, 255.0f));
        }
    }
}

extern "C" __global__ void rgb8_bf16(const unsigned short* x, unsigned char* out, long long plane) { rgb8_body<0>(x, out, plane); }
extern "C" __global__ void rgb8_f16(const unsigned short* x, unsigned char* out, long long plane) { rgb8_body<1>(x, out, plane); }
extern "C" __global__ void rgb8_f32(const float* x, unsigned char* out, long long plane) { rgb8_body<2>(x, out, plane); }
