// Fused attention for bf16 on tensor cores (sm_80+: mma.sync m16n8k16, ldmatrix, cp.async).
//
// O = softmax(scale · Q Kᵀ + mask) V per (item, head), never materialising the scores: the
// FlashAttention-2 scheme. Each block owns BM = 16·M_TILES·WARPS query rows of one head; each
// warp owns 16·M_TILES of them. Key/value tiles of BN rows stream through shared memory, two
// stages deep (cp.async), while each warp keeps its running row maxima, row sums and the output
// accumulator in registers (float32). P is rounded to bf16 before P·V, as the reference's
// bf16 attention does.
//
// Layout: tokens-major with row strides, so Q, K and V can be column ranges of one fused
// projection: element (item b, token i, head h, d) of Q is at q[b·q_batch + i·q_row + h·128 + d].
// K and V heads serve `group` query heads each (grouped-query attention). key_mask (optional)
// is [B, Lk] bytes, nonzero = attend; causal limits query i to keys ≤ i. Rows that see no key
// give zeros (as the masked-softmax path does).
//
// Self-contained (no headers), so it compiles both inside the backend's NVRTC module and alone
// through CuPy's RawModule for tuning (bench/kernels/).

#define FA_HEAD_DIM 128
#define FA_PAD 8
#define FA_LDS (FA_HEAD_DIM + FA_PAD)
#define FA_NEG_INF __int_as_float(0xff800000u)

__device__ __forceinline__ unsigned fa_smem_address(const void* pointer) {
    unsigned address;
    asm volatile("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(pointer));
    return address;
}

__device__ __forceinline__ void fa_copy16(unsigned destination, const void* source, bool valid) {
    int bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(destination), "l"(source), "r"(bytes));
}
__device__ __forceinline__ void fa_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void fa_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void fa_ldmatrix_x4(unsigned address, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(address));
}
__device__ __forceinline__ void fa_ldmatrix_x4_trans(unsigned address, unsigned& r0, unsigned& r1, unsigned& r2,
                                                     unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(address));
}

__device__ __forceinline__ void fa_mma(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 2^x by the special-function unit (ex2.approx: 2 ulp; -inf gives +0), as FlashAttention does.
__device__ __forceinline__ float fa_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Two floats → bf16x2 (round to nearest even); `low` lands at the lower address.
__device__ __forceinline__ unsigned fa_pack(float low, float high) {
    unsigned packed;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(high), "f"(low));
    return packed;
}

// Copies `rows` rows of 128 bf16 (row `row0 + r` of a matrix at `base`, `stride` elements apart,
// rows at or past `limit` zero-filled) into shared memory rows of FA_LDS elements.
template <int ROWS, int THREADS>
__device__ __forceinline__ void fa_load_tile(unsigned short* shared, const unsigned short* base, long long stride,
                                             int row0, int limit) {
    for (int c = threadIdx.x; c < ROWS * 16; c += THREADS) {
        int r = c >> 4, chunk = c & 15;
        bool valid = row0 + r < limit;
        const unsigned short* source = valid ? base + (long long)(row0 + r) * stride + chunk * 8 : base;
        fa_copy16(fa_smem_address(shared + r * FA_LDS + chunk * 8), source, valid);
    }
}

template <int M_TILES, int WARPS, int BN, bool Q_IN_REGISTERS, bool FAST_EXP>
__device__ __forceinline__ void flash_attention_body(
    const unsigned short* __restrict__ q, const unsigned short* __restrict__ k, const unsigned short* __restrict__ v,
    unsigned short* __restrict__ o, const unsigned char* __restrict__ key_mask,
    long long q_batch, long long q_row, long long k_batch, long long k_row, long long v_batch, long long v_row,
    long long o_batch, long long o_row, int lq, int lk, int group, float scale_log2, int causal) {
    constexpr int THREADS = 32 * WARPS;
    constexpr int BM = 16 * M_TILES * WARPS;
    constexpr int N_TILES = BN / 8;
    constexpr int D_TILES = FA_HEAD_DIM / 8;
    extern __shared__ __align__(16) unsigned short fa_shared[];
    unsigned short* sQ = fa_shared;
    unsigned short* sK = sQ + BM * FA_LDS;
    unsigned short* sV = sK + 2 * BN * FA_LDS;

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int head = blockIdx.y, item = blockIdx.z;
    const int query0 = blockIdx.x * BM;
    const unsigned short* qBase = q + item * q_batch + (long long)head * FA_HEAD_DIM;
    const unsigned short* kBase = k + item * k_batch + (long long)(head / group) * FA_HEAD_DIM;
    const unsigned short* vBase = v + item * v_batch + (long long)(head / group) * FA_HEAD_DIM;
    const unsigned char* mask = key_mask ? key_mask + (long long)item * lk : 0;

    // Keys this block can see: all, or up to its last query when causal.
    int keyEnd = lk;
    if (causal) keyEnd = min(lk, query0 + BM);
    const int tiles = (keyEnd + BN - 1) / BN;

    fa_load_tile<BM, THREADS>(sQ, qBase, q_row, query0, lq);
    if (tiles > 0) {
        fa_load_tile<BN, THREADS>(sK, kBase, k_row, 0, lk);
        fa_load_tile<BN, THREADS>(sV, vBase, v_row, 0, lk);
    }
    fa_commit();

    float acc[M_TILES][D_TILES][4];
    float rowMax[M_TILES][2], rowSum[M_TILES][2];
#pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
        for (int dt = 0; dt < D_TILES; ++dt) acc[mt][dt][0] = acc[mt][dt][1] = acc[mt][dt][2] = acc[mt][dt][3] = 0.0f;
        rowMax[mt][0] = rowMax[mt][1] = FA_NEG_INF;
        rowSum[mt][0] = rowSum[mt][1] = 0.0f;
    }
    const int warpRow0 = warp * 16 * M_TILES;
    const int g = lane >> 2, t = lane & 3;
    // With Q_IN_REGISTERS the warp's Q fragments are read from shared memory once, at the first tile.
    unsigned qFragments[Q_IN_REGISTERS ? M_TILES : 1][Q_IN_REGISTERS ? FA_HEAD_DIM / 16 : 1][4];

    for (int tile = 0; tile < tiles; ++tile) {
        const int stage = tile & 1;
        if (tile + 1 < tiles) {
            fa_load_tile<BN, THREADS>(sK + (stage ^ 1) * BN * FA_LDS, kBase, k_row, (tile + 1) * BN, lk);
            fa_load_tile<BN, THREADS>(sV + (stage ^ 1) * BN * FA_LDS, vBase, v_row, (tile + 1) * BN, lk);
            fa_commit();
            fa_wait<1>();
        } else {
            fa_wait<0>();
        }
        __syncthreads();
        const unsigned short* tileK = sK + stage * BN * FA_LDS;
        const unsigned short* tileV = sV + stage * BN * FA_LDS;
        if (Q_IN_REGISTERS && tile == 0) {
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt)
#pragma unroll
                for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
                    const unsigned short* row =
                        sQ + (warpRow0 + mt * 16 + (lane & 15)) * FA_LDS + kk * 16 + (lane >> 4) * 8;
                    fa_ldmatrix_x4(fa_smem_address(row), qFragments[Q_IN_REGISTERS ? mt : 0][Q_IN_REGISTERS ? kk : 0][0],
                                   qFragments[Q_IN_REGISTERS ? mt : 0][Q_IN_REGISTERS ? kk : 0][1],
                                   qFragments[Q_IN_REGISTERS ? mt : 0][Q_IN_REGISTERS ? kk : 0][2],
                                   qFragments[Q_IN_REGISTERS ? mt : 0][Q_IN_REGISTERS ? kk : 0][3]);
                }
        }

        // S = Q Kᵀ for this warp's rows and the tile's BN keys.
        float s[M_TILES][N_TILES][4];
#pragma unroll
        for (int mt = 0; mt < M_TILES; ++mt)
#pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < FA_HEAD_DIM / 16; ++kk) {
            unsigned a[M_TILES][4];
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
                if (Q_IN_REGISTERS) {
#pragma unroll
                    for (int i = 0; i < 4; ++i) a[mt][i] = qFragments[Q_IN_REGISTERS ? mt : 0][Q_IN_REGISTERS ? kk : 0][i];
                } else {
                    const unsigned short* row =
                        sQ + (warpRow0 + mt * 16 + (lane & 15)) * FA_LDS + kk * 16 + (lane >> 4) * 8;
                    fa_ldmatrix_x4(fa_smem_address(row), a[mt][0], a[mt][1], a[mt][2], a[mt][3]);
                }
            }
#pragma unroll
            for (int nt2 = 0; nt2 < N_TILES / 2; ++nt2) {
                unsigned b0, b1, b2, b3;
                const unsigned short* row =
                    tileK + (nt2 * 16 + (lane & 7) + ((lane >> 4) << 3)) * FA_LDS + kk * 16 + ((lane >> 3) & 1) * 8;
                fa_ldmatrix_x4(fa_smem_address(row), b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < M_TILES; ++mt) {
                    fa_mma(s[mt][2 * nt2], a[mt], b0, b1);
                    fa_mma(s[mt][2 * nt2 + 1], a[mt], b2, b3);
                }
            }
        }

        // Masks: keys past the end, masked keys, future keys.
        const int key0 = tile * BN;
        const bool partial = key0 + BN > lk || mask != 0 || (causal && key0 + BN - 1 > query0);
        if (partial) {
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt)
#pragma unroll
                for (int nt = 0; nt < N_TILES; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        int key = key0 + nt * 8 + 2 * t + (e & 1);
                        int query = query0 + warpRow0 + mt * 16 + g + (e >> 1) * 8;
                        bool visible = key < lk && (!mask || mask[key]) && (!causal || key <= query);
                        if (!visible) s[mt][nt][e] = FA_NEG_INF;
                    }
        }

        // Online softmax: new row maxima, rescale what was accumulated, P = exp(S - max).
        unsigned p[M_TILES][BN / 16][4];
#pragma unroll
        for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                float m = rowMax[mt][half];
#pragma unroll
                for (int nt = 0; nt < N_TILES; ++nt) m = fmaxf(m, fmaxf(s[mt][nt][2 * half], s[mt][nt][2 * half + 1]));
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
                const float shift = m == FA_NEG_INF ? 0.0f : m * scale_log2;
                const float alpha = FAST_EXP ? fa_exp2(rowMax[mt][half] * scale_log2 - shift)
                                             : exp2f(rowMax[mt][half] * scale_log2 - shift);
                rowMax[mt][half] = m;
                float sum = 0.0f;
#pragma unroll
                for (int nt = 0; nt < N_TILES; ++nt) {
                    const float x0 = s[mt][nt][2 * half] * scale_log2 - shift;
                    const float x1 = s[mt][nt][2 * half + 1] * scale_log2 - shift;
                    const float e0 = FAST_EXP ? fa_exp2(x0) : exp2f(x0), e1 = FAST_EXP ? fa_exp2(x1) : exp2f(x1);
                    s[mt][nt][2 * half] = e0;
                    s[mt][nt][2 * half + 1] = e1;
                    sum += e0 + e1;
                }
                rowSum[mt][half] = rowSum[mt][half] * alpha + sum;
#pragma unroll
                for (int dt = 0; dt < D_TILES; ++dt) {
                    acc[mt][dt][2 * half] *= alpha;
                    acc[mt][dt][2 * half + 1] *= alpha;
                }
            }
#pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
                p[mt][kk][0] = fa_pack(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                p[mt][kk][1] = fa_pack(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                p[mt][kk][2] = fa_pack(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                p[mt][kk][3] = fa_pack(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
        }

        // O += P V.
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
#pragma unroll
            for (int dt2 = 0; dt2 < D_TILES / 2; ++dt2) {
                unsigned b0, b1, b2, b3;
                const unsigned short* row =
                    tileV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * FA_LDS + dt2 * 16 + (lane >> 4) * 8;
                fa_ldmatrix_x4_trans(fa_smem_address(row), b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < M_TILES; ++mt) {
                    fa_mma(acc[mt][2 * dt2], p[mt][kk], b0, b1);
                    fa_mma(acc[mt][2 * dt2 + 1], p[mt][kk], b2, b3);
                }
            }
        }
        __syncthreads();
    }

    // Normalise and store bf16 pairs.
    unsigned short* oBase = o + item * o_batch + (long long)head * FA_HEAD_DIM;
#pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            float l = rowSum[mt][half];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const float inverse = l > 0.0f ? 1.0f / l : 0.0f;
            const int query = query0 + warpRow0 + mt * 16 + g + half * 8;
            if (query < lq) {
                unsigned* destination = (unsigned*)(oBase + (long long)query * o_row);
#pragma unroll
                for (int dt = 0; dt < D_TILES; ++dt)
                    destination[dt * 4 + t] =
                        fa_pack(acc[mt][dt][2 * half] * inverse, acc[mt][dt][2 * half + 1] * inverse);
            }
        }
    }
}

#define FA_ENTRY(NAME, M_TILES, WARPS, BN, QREG, FAST)                                                                       \
    extern "C" __global__ void __launch_bounds__(32 * WARPS) NAME(                                                  \
        const unsigned short* q, const unsigned short* k, const unsigned short* v, unsigned short* o,               \
        const unsigned char* key_mask, long long q_batch, long long q_row, long long k_batch, long long k_row,       \
        long long v_batch, long long v_row, long long o_batch, long long o_row, int lq, int lk, int group,          \
        float scale_log2, int causal) {                                                                             \
        flash_attention_body<M_TILES, WARPS, BN, QREG, FAST>(q, k, v, o, key_mask, q_batch, q_row, k_batch, k_row, v_batch,    \
                                                 v_row, o_batch, o_row, lq, lk, group, scale_log2, causal);         \
    }

// The two variants the backend launches, named by query rows per block (BM) and keys per tile
// (BN); shared memory (BM + 4·BN) rows of FA_LDS bf16. The tuning variants (Q in registers,
// exponentials on the SFU, other tiles) live in bench/kernels/flash_attention_variants.cu, which
// includes this file, so the backend's cold compile does not pay for them.
FA_ENTRY(flash_attention_bf16_m64_n64, 1, 4, 64, false, false)
FA_ENTRY(flash_attention_bf16_m128_n64_w4, 2, 4, 64, false, false)
