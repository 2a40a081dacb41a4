#!/usr/bin/env python3
"""On the GPU machine: checks and times the backend's fused kernels (Sources/ZImageCUDA/Kernels/*.cu)
through CuPy's RawModule (the same NVRTC the Swift backend uses) against PyTorch, without a Swift
build. Prints a table; writes JSON to $OUT/tune_fused.json.

Checks draw fresh random inputs, poison outputs with NaN bits first, and compare with a float32
(attention) or composed-bf16 (norms) PyTorch reference by ‖out − ref‖ / ‖ref‖ and max |diff|."""
import json, math, os, statistics, sys
import numpy as np
import torch
import torch.nn.functional as F
import cupy

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KERNELS = os.path.join(ROOT, "Sources", "ZImageCUDA", "Kernels")
OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)
dev = "cuda"
results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "checks": [], "timings": []}


def module(name, folder=KERNELS):
    return cupy.RawModule(code=open(os.path.join(folder, name)).read(), options=("--std=c++17", f"-I{KERNELS}"))


def ptr(t):
    return np.uint64(t.data_ptr()) if t is not None else np.uint64(0)


def bench(fn, iterations=30, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def rel(out, ref):
    out, ref = out.double(), ref.double()
    if torch.isnan(out).any():
        return float("nan")
    return float((out - ref).norm() / ref.norm().clamp_min(1e-30))


def check(name, error, bound, **extra):
    ok = error == error and error <= bound
    results["checks"].append({"name": name, "relative_error": error, "bound": bound, "passed": ok, **extra})
    print(f"{'ok ' if ok else 'BAD'} {name:60} {error:.2e} (bound {bound:.0e}) {extra if extra else ''}")


# ---------------------------------------------------------------- attention
# Both launched variants and the tuning ones (bench/kernels/flash_attention_variants.cu includes the file).
fa = module("flash_attention_variants.cu", folder=os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {  # name: (BM, BN, threads)
    "flash_attention_bf16_m64_n64": (64, 64, 128),
    "flash_attention_bf16_m128_n64": (128, 64, 256),
    "flash_attention_bf16_m128_n32_w4": (128, 32, 128),
    "flash_attention_bf16_m128_n64_w4": (128, 64, 128),
    "flash_attention_bf16_m64_n128": (64, 128, 128),
    "flash_attention_bf16_m64_n64_qr": (64, 64, 128),
    "flash_attention_bf16_m128_n64_qr": (128, 64, 256),
    "flash_attention_bf16_m128_n32_w4_fx": (128, 32, 128),
    "flash_attention_bf16_m128_n64_w4_fx": (128, 64, 128),
    "flash_attention_bf16_m64_n32_qr": (64, 32, 128),
}
LDS = 136


def run_fa(variant, q, k, v, o, lq, lk, heads, group, scale, mask=None, causal=False, batch=1,
           q_strides=None, k_strides=None, v_strides=None):
    bm, bn, threads = VARIANTS[variant]
    kernel = fa.get_function(variant)
    shared = (bm + 4 * bn) * LDS * 2
    kernel.max_dynamic_shared_size_bytes = shared
    qs = q_strides or (q.stride(0), q.stride(1))
    ks = k_strides or (k.stride(0), k.stride(1))
    vs = v_strides or (v.stride(0), v.stride(1))
    grid = ((lq + bm - 1) // bm, heads, batch)
    kernel(grid, (threads,), (ptr(q), ptr(k), ptr(v), ptr(o), ptr(mask), np.int64(qs[0]), np.int64(qs[1]),
                              np.int64(ks[0]), np.int64(ks[1]), np.int64(vs[0]), np.int64(vs[1]),
                              np.int64(o.stride(0)), np.int64(o.stride(1)), np.int32(lq), np.int32(lk),
                              np.int32(group), np.float32(scale * math.log2(math.e)), np.int32(1 if causal else 0)),
           shared_mem=shared)


def reference_attention(q, k, v, mask=None, causal=False):
    # q [B, Lq, H, D] → float32 math reference with -inf masking and zero rows when nothing is visible.
    b, lq, h, d = q.shape
    hk = k.shape[2]
    qf, kf, vf = (x.float().transpose(1, 2) for x in (q, k, v))
    kf = kf.repeat_interleave(h // hk, dim=1)
    vf = vf.repeat_interleave(h // hk, dim=1)
    s = qf @ kf.transpose(-1, -2) / math.sqrt(d)
    visible = torch.ones(b, 1, lq, k.shape[1], dtype=torch.bool, device=q.device)
    if mask is not None:
        visible = visible & (mask[:, None, None, :] != 0)
    if causal:
        visible = visible & torch.ones(lq, k.shape[1], dtype=torch.bool, device=q.device).tril()
    s = s.masked_fill(~visible, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return (p @ vf).transpose(1, 2)


def poisoned(shape):
    return torch.full(shape, float("nan"), dtype=torch.bfloat16, device=dev)


for variant in VARIANTS:
    # Full size, the fused-projection layout: one [L, 3·H·D] buffer, Q/K/V as column ranges.
    L, H, D = 4128, 30, 128
    qkv = torch.randn(L, 3 * H * D, device=dev).to(torch.bfloat16)
    q, k, v = (qkv[:, i * H * D:(i + 1) * H * D] for i in range(3))
    o = poisoned((1, L, H, D))
    run_fa(variant, q, k, v, o, L, L, H, 1, 1 / math.sqrt(D), q_strides=(0, 3 * H * D), k_strides=(0, 3 * H * D),
           v_strides=(0, 3 * H * D))
    ref = reference_attention(q.reshape(1, L, H, D), k.reshape(1, L, H, D), v.reshape(1, L, H, D))
    torch_bf16 = F.scaled_dot_product_attention(*(x.reshape(1, L, H, D).transpose(1, 2) for x in (q, k, v))).transpose(1, 2)
    check(f"{variant} 4128x30x128 fused layout", rel(o, ref), 1e-2, torch_bf16_error=rel(torch_bf16, ref))
    # GQA, causal, key mask, ragged lengths, batch 2, one item fully masked.
    B, L2, Hq, Hk = 2, 77, 32, 8
    q2 = torch.randn(B, L2, Hq, D, device=dev).to(torch.bfloat16)
    k2 = torch.randn(B, L2, Hk, D, device=dev).to(torch.bfloat16)
    v2 = torch.randn(B, L2, Hk, D, device=dev).to(torch.bfloat16)
    mask = (torch.rand(B, L2, device=dev) > 0.3).to(torch.uint8)
    mask[1] = 0
    o2 = poisoned((B, L2, Hq, D))
    run_fa(variant, q2, k2, v2, o2, L2, L2, Hq, Hq // Hk, 1 / math.sqrt(D), mask=mask, causal=True, batch=B)
    ref2 = reference_attention(q2, k2, v2, mask=mask, causal=True)
    masked_max = float(o2[1].float().abs().max())  # NaN (poison) or nonzero fails
    check(f"{variant} gqa causal masked B2 77", rel(o2[0], ref2[0]) if masked_max == 0 else float("inf"), 1e-2,
          masked_item_max=masked_max)
    # Different query and key lengths, not multiples of the tiles.
    q3 = torch.randn(1, 33, 4, D, device=dev).to(torch.bfloat16)
    k3 = torch.randn(1, 1000, 4, D, device=dev).to(torch.bfloat16)
    v3 = torch.randn(1, 1000, 4, D, device=dev).to(torch.bfloat16)
    o3 = poisoned((1, 33, 4, D))
    run_fa(variant, q3, k3, v3, o3, 33, 1000, 4, 1, 0.05)
    s = (q3.float().transpose(1, 2) @ k3.float().transpose(1, 2).transpose(-1, -2)) * 0.05
    ref3 = (torch.softmax(s, -1) @ v3.float().transpose(1, 2)).transpose(1, 2)
    check(f"{variant} lq 33 lk 1000 scale 0.05", rel(o3, ref3), 1e-2)

# Timing at the DiT's shape.
L, H, D = 4128, 30, 128
flops = 4 * L * L * D * H
q, k, v = (torch.randn(1, L, H, D, device=dev).to(torch.bfloat16) for _ in range(3))
o = torch.empty_like(q)
for variant in VARIANTS:
    ms = bench(lambda: run_fa(variant, q, k, v, o, L, L, H, 1, 1 / math.sqrt(D)))
    results["timings"].append({"name": variant, "ms": ms, "tflops": flops / ms / 1e9})
qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
from torch.nn.attention import sdpa_kernel, SDPBackend
for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
    try:
        with sdpa_kernel(backend):
            ms = bench(lambda: F.scaled_dot_product_attention(qt, kt, vt))
        results["timings"].append({"name": f"torch sdpa {backend.name}", "ms": ms, "tflops": flops / ms / 1e9})
    except Exception as error:
        results["timings"].append({"name": f"torch sdpa {backend.name}", "error": repr(error)[:120]})

# ---------------------------------------------------------------- fused norms
fe = module("fused_elementwise.cu")
L, W = 4128, 3840


def r(x):
    return x.to(torch.bfloat16)


def rms(x, w, eps):
    variance = x.float().pow(2).mean(-1, keepdim=True)
    n = r(x * torch.rsqrt(variance + eps))
    return n * w if w is not None else n


x = torch.randn(L, W, device=dev).to(torch.bfloat16)
y = torch.randn(L, W, device=dev).to(torch.bfloat16)
w = (torch.rand(W, device=dev) + 0.5).to(torch.bfloat16)
s = (1 + torch.randn(1, W, device=dev) * 0.1).to(torch.bfloat16)
gate = torch.tanh(torch.randn(1, W, device=dev)).to(torch.bfloat16)
out = poisoned((L, W))


def mismatches(a, b):
    return int((a.view(torch.int16) != b.view(torch.int16)).sum())


def launch_scale(out, x, w, s):
    fe.get_function("rms_norm_scale_bf16")((L,), (256,), (ptr(x), ptr(w), ptr(s), ptr(out), np.int64(W), np.float32(1e-5)))


launch_scale(out, x, w, s)
ref = rms(x, w, 1e-5) * s
check("rms_norm_scale_bf16 vs composed bf16", rel(out, ref), 4e-3, differing=mismatches(out, ref), of=out.numel())
results["timings"].append({"name": "rms_norm_scale fused", "ms": bench(lambda: launch_scale(out, x, w, s))})
results["timings"].append({"name": "rms_norm_scale torch composed", "ms": bench(lambda: rms(x, w, 1e-5) * s)})


def launch_gated(out, x, y, w, gate):
    fe.get_function("gated_rms_norm_residual_bf16")((L,), (256,), (ptr(x), ptr(y), ptr(w), ptr(gate), ptr(out),
                                                                   np.int64(W), np.float32(1e-5)))


out = poisoned((L, W))
launch_gated(out, x, y, w, gate)
ref = x + gate * rms(y, w, 1e-5)
check("gated_rms_norm_residual_bf16 vs composed", rel(out, ref), 4e-3, differing=mismatches(out, ref))
out = poisoned((L, W))
launch_gated(out, x, y, w, None)
ref = x + rms(y, w, 1e-5)
check("gated_rms_norm_residual_bf16 no gate", rel(out, ref), 4e-3, differing=mismatches(out, ref))
results["timings"].append({"name": "gated residual fused", "ms": bench(lambda: launch_gated(out, x, y, w, gate))})
results["timings"].append({"name": "gated residual torch composed", "ms": bench(lambda: x + gate * rms(y, w, 1e-5))})

# q/k norm + RoPE, interleaved pairs, on [L, H, 128].
H = 30
qh = torch.randn(L, H, 128, device=dev).to(torch.bfloat16)
wq = (torch.rand(128, device=dev) + 0.5).to(torch.bfloat16)
angles = torch.rand(L, 64, device=dev) * 6.28
cos, sin = torch.cos(angles), torch.sin(angles)
out = poisoned((L, H, 128))


def launch_rope(out, x):
    rows = L * H
    fe.get_function("rms_norm_rope_bf16")(((rows + 7) // 8,), (256,), (ptr(x), ptr(wq), ptr(cos), ptr(sin), ptr(out),
                                                                       np.int64(rows), np.int64(H), np.float32(1e-5)))


def torch_rope(x):
    n = rms(x, wq, 1e-5)
    xc = torch.view_as_complex(n.float().reshape(L, H, 64, 2))
    f = torch.polar(torch.ones_like(angles), angles)[:, None, :]
    return torch.view_as_real(xc * f).flatten(2).to(torch.bfloat16)


launch_rope(out, qh)
ref = torch_rope(qh)
check("rms_norm_rope_bf16 vs diffusers-style complex", rel(out, ref), 4e-3, differing=mismatches(out, ref))
results["timings"].append({"name": "norm+rope fused", "ms": bench(lambda: launch_rope(out, qh))})
results["timings"].append({"name": "norm+rope torch composed", "ms": bench(lambda: torch_rope(qh))})

a = torch.randn(L, 10240, device=dev).to(torch.bfloat16)
b = torch.randn(L, 10240, device=dev).to(torch.bfloat16)
out = poisoned((L, 10240))


def launch_silu(out):
    n = a.numel()
    fe.get_function("silu_mul_bf16")((132 * 16,), (256,), (ptr(a), ptr(b), ptr(out), np.int64(n)))


launch_silu(out)
ref = F.silu(a) * b
check("silu_mul_bf16 vs composed", rel(out, ref), 4e-3, differing=mismatches(out, ref))
results["timings"].append({"name": "silu*mul fused", "ms": bench(lambda: launch_silu(out))})
results["timings"].append({"name": "silu*mul torch composed", "ms": bench(lambda: F.silu(a) * b)})

json.dump(results, open(os.path.join(OUT, "tune_fused.json"), "w"), indent=1)
print()
for t in results["timings"]:
    extra = f"{t['tflops']:.0f} TFLOP/s" if "tflops" in t else t.get("error", "")
    print(f"{t['name']:45} {t.get('ms', float('nan')):8.3f} ms  {extra}")
failed = [c["name"] for c in results["checks"] if not c["passed"]]
print("FAILED:", failed if failed else "none")
