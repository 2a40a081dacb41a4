#!/usr/bin/env python3
"""On the GPU machine: two ceilings the backend's next steps depend on.

1. The VAE decoder's convolutions (every shape of a 1024² decode) through cuDNN's classic
   descriptor API (what Sources/ZImageCUDA/CUDNN.swift calls, opened here with ctypes), in NCHW
   and in NHWC, next to PyTorch's F.conv2d (cuDNN's graph API) in both memory formats.
2. The transformer's GEMMs at 1024² (4128 tokens) in bf16 and FP8 e4m3 (torch._scaled_mm: per-tensor
   scales go through cuBLASLt; row-wise scales through CUTLASS).

Prints tables; writes $OUT/probe_conv_fp8.json."""
import ctypes, json, os, statistics
import torch
import torch.nn.functional as F

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "conv": [], "gemm": []}


def bench(fn, iterations=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def load_cudnn():
    import nvidia.cudnn as m
    lib = os.path.join(list(m.__path__)[0], "lib", "libcudnn.so.9")
    return ctypes.CDLL(lib)


dnn = load_cudnn()
dnn.cudnnGetVersion.restype = ctypes.c_size_t
results["cudnn_version"] = dnn.cudnnGetVersion()
handle = ctypes.c_void_p()
assert dnn.cudnnCreate(ctypes.byref(handle)) == 0
assert dnn.cudnnSetStream(handle, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)) == 0
BF16, NCHW, NHWC = 9, 0, 1


class Perf(ctypes.Structure):
    _fields_ = [("algo", ctypes.c_int), ("status", ctypes.c_int), ("time", ctypes.c_float),
                ("memory", ctypes.c_size_t), ("determinism", ctypes.c_int), ("mathType", ctypes.c_int),
                ("reserved", ctypes.c_int * 3)]


workspace = torch.empty(512 << 20, dtype=torch.uint8, device="cuda")


def legacy_conv(n, c, h, w, k, r, pad, layout):
    """Times cudnnConvolutionForward with the FindEx-chosen algorithm; returns (ms, algo, max error)."""
    x = torch.randn(n, c, h, w, device="cuda", dtype=torch.bfloat16)
    wt = torch.randn(k, c, r, r, device="cuda", dtype=torch.bfloat16) * (1 / (c * r * r) ** 0.5)
    ref = F.conv2d(x.float(), wt.float(), padding=pad)
    if layout == NHWC:
        xs, ws = x.permute(0, 2, 3, 1).contiguous(), wt.permute(0, 2, 3, 1).contiguous()
        y = torch.empty(n, h, w, k, device="cuda", dtype=torch.bfloat16)
    else:
        xs, ws = x.contiguous(), wt.contiguous()
        y = torch.empty(n, k, h, w, device="cuda", dtype=torch.bfloat16)
    xd, yd, wd, cd = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert dnn.cudnnCreateTensorDescriptor(ctypes.byref(xd)) == 0
    assert dnn.cudnnSetTensor4dDescriptor(xd, layout, BF16, n, c, h, w) == 0
    assert dnn.cudnnCreateTensorDescriptor(ctypes.byref(yd)) == 0
    assert dnn.cudnnSetTensor4dDescriptor(yd, layout, BF16, n, k, h, w) == 0
    assert dnn.cudnnCreateFilterDescriptor(ctypes.byref(wd)) == 0
    assert dnn.cudnnSetFilter4dDescriptor(wd, BF16, layout, k, c, r, r) == 0
    assert dnn.cudnnCreateConvolutionDescriptor(ctypes.byref(cd)) == 0
    assert dnn.cudnnSetConvolution2dDescriptor(cd, pad, pad, 1, 1, 1, 1, 1, 0) == 0
    assert dnn.cudnnSetConvolutionMathType(cd, 1) == 0
    perfs = (Perf * 8)()
    returned = ctypes.c_int()
    status = dnn.cudnnFindConvolutionForwardAlgorithmEx(
        handle, xd, ctypes.c_void_p(xs.data_ptr()), wd, ctypes.c_void_p(ws.data_ptr()), cd, yd,
        ctypes.c_void_p(y.data_ptr()), 8, ctypes.byref(returned), perfs, ctypes.c_void_p(workspace.data_ptr()),
        ctypes.c_size_t(workspace.numel()))
    assert status == 0, status
    found = [(p.algo, p.time, p.memory) for p in perfs[:returned.value] if p.status == 0]
    algo, _, mem = found[0]
    one, zero = ctypes.c_float(1), ctypes.c_float(0)

    def run():
        s = dnn.cudnnConvolutionForward(handle, ctypes.byref(one), xd, ctypes.c_void_p(xs.data_ptr()), wd,
                                        ctypes.c_void_p(ws.data_ptr()), cd, algo,
                                        ctypes.c_void_p(workspace.data_ptr()), ctypes.c_size_t(mem),
                                        ctypes.byref(zero), yd, ctypes.c_void_p(y.data_ptr()))
        assert s == 0, s
    ms = bench(run)
    out = y.permute(0, 3, 1, 2) if layout == NHWC else y
    err = float((out.float() - ref).abs().max())
    return ms, algo, err, found[:4]


# (count in a 1024² decode, C, H=W, K, kernel)
shapes = [(1, 16, 128, 512, 3), (10, 512, 128, 512, 3), (1, 512, 256, 512, 3), (6, 512, 256, 512, 3),
          (1, 512, 512, 512, 3), (1, 512, 512, 256, 3), (5, 256, 512, 256, 3), (1, 512, 512, 256, 1),
          (1, 256, 1024, 256, 3), (1, 256, 1024, 128, 3), (5, 128, 1024, 128, 3), (1, 256, 1024, 128, 1),
          (1, 128, 1024, 3, 3)]
totals = {}
print(f"cuDNN {results['cudnn_version']}; conv ms (count × shape): legacy NCHW | legacy NHWC | torch NCHW | torch NHWC")
for count, c, hw, k, r in shapes:
    pad = r // 2
    row = {"count": count, "c": c, "hw": hw, "k": k, "r": r}
    flops = 2 * c * k * r * r * hw * hw
    for name, layout in (("legacy_nchw", NCHW), ("legacy_nhwc", NHWC)):
        ms, algo, err, found = legacy_conv(1, c, hw, hw, k, r, pad, layout)
        row[name] = {"ms": ms, "algo": algo, "max_err": err, "candidates": found}
    x = torch.randn(1, c, hw, hw, device="cuda", dtype=torch.bfloat16)
    wt = torch.randn(k, c, r, r, device="cuda", dtype=torch.bfloat16) * 0.02
    torch.backends.cudnn.benchmark = True
    row["torch_nchw"] = {"ms": bench(lambda: F.conv2d(x, wt, padding=pad))}
    xc, wc = x.to(memory_format=torch.channels_last), wt.to(memory_format=torch.channels_last)
    row["torch_nhwc"] = {"ms": bench(lambda: F.conv2d(xc, wc, padding=pad))}
    for key in ("legacy_nchw", "legacy_nhwc", "torch_nchw", "torch_nhwc"):
        totals[key] = totals.get(key, 0) + count * row[key]["ms"]
    results["conv"].append(row)
    print(f"{count:2d} × {c:4d}→{k:4d} {r}x{r} @ {hw:4d}²: " + " | ".join(
        f"{row[key]['ms']:7.3f} ({flops / row[key]['ms'] / 1e9:4.0f} TF/s)" for key in
        ("legacy_nchw", "legacy_nhwc", "torch_nchw", "torch_nhwc"))
        + f"  algos {row['legacy_nchw']['algo']}/{row['legacy_nhwc']['algo']} err {row['legacy_nhwc']['max_err']:.3f}")
print("decode total ms: " + ", ".join(f"{k} {v:.1f}" for k, v in totals.items()))
results["conv_totals_ms"] = totals
# NCHW <-> NHWC transposes of the biggest activation (what wrapping each conv would cost).
big = torch.randn(1, 256, 1024, 1024, device="cuda", dtype=torch.bfloat16)
results["transpose_256x1024x1024_ms"] = bench(lambda: big.permute(0, 2, 3, 1).contiguous())
print(f"NCHW→NHWC copy of 1×256×1024²: {results['transpose_256x1024x1024_ms']:.3f} ms")

# GEMMs: x [M, K] · wᵀ, w [N, K].
M = 4128
print("GEMM ms (TFLOP/s): bf16 | fp8 per-tensor | fp8 per-tensor fast-accum | fp8 row-wise")
for k, n, count in ((3840, 3840, 4), (3840, 11520, 0), (3840, 10240, 2), (10240, 3840, 1), (3840, 20480, 0)):
    x = torch.randn(M, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
    xq, wq = x.to(torch.float8_e4m3fn), (w * 20).to(torch.float8_e4m3fn)
    one = torch.tensor(1.0, device="cuda")
    sa, sb = torch.ones(M, 1, device="cuda"), torch.ones(1, n, device="cuda")
    flops = 2 * M * n * k
    row = {"m": M, "k": k, "n": n, "per_layer": count}
    row["bf16"] = bench(lambda: x @ w.t())
    row["fp8_tensor"] = bench(lambda: torch._scaled_mm(xq, wq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
    row["fp8_tensor_fast"] = bench(lambda: torch._scaled_mm(xq, wq.t(), scale_a=one, scale_b=one,
                                                            out_dtype=torch.bfloat16, use_fast_accum=True))
    try:
        row["fp8_rowwise"] = bench(lambda: torch._scaled_mm(xq, wq.t(), scale_a=sa, scale_b=sb,
                                                            out_dtype=torch.bfloat16, use_fast_accum=True))
    except Exception as e:  # noqa: BLE001
        row["fp8_rowwise"] = float("nan"); row["rowwise_error"] = str(e)[:200]
    results["gemm"].append(row)
    print(f"{M}×{k}→{n}: " + " | ".join(f"{row[key]:.3f} ({flops / row[key] / 1e9:.0f})" for key in
                                         ("bf16", "fp8_tensor", "fp8_tensor_fast", "fp8_rowwise")))
# Activation quantisation passes (amax + cast) on the largest activation.
x = torch.randn(M, 10240, device="cuda", dtype=torch.bfloat16)
results["amax_ms"] = bench(lambda: x.abs().amax())
results["quantise_ms"] = bench(lambda: (x * 0.5).to(torch.float8_e4m3fn))
print(f"amax {results['amax_ms']:.3f} ms, quantise {results['quantise_ms']:.3f} ms on {M}×10240")
json.dump(results, open(os.path.join(OUT, "probe_conv_fp8.json"), "w"), indent=1)
