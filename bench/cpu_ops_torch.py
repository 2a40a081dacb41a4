#!/usr/bin/env python3
"""The cases of `ZImageBench cpu-ops` in PyTorch on the CPU, with the same thread count.

Prints one JSON object: {"implementation": "torch", "threads", "torch", "cases": [{"case", "ms", "gflops"}]}.
Usage: cpu_ops_torch.py THREADS REPEATS
"""
import json
import sys
import time

import torch

threads, repeats = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(7)
F = torch.nn.functional

x = torch.randn(1024, 3840)
w = torch.randn(3840, 3840) * 0.02
wb = w.to(torch.bfloat16)
q, k, v = (torch.randn(1, 4, 1024, 128) for _ in range(3))   # torch SDPA takes [B, H, L, D]
image = torch.randn(1, 128, 128, 128)
kernel = torch.randn(128, 128, 3, 3) * 0.03
bias = torch.randn(128)

cases = [
    # Same arithmetic as ours: the bf16 weight is widened and the product runs in float32.
    ("linear_f32_1024x3840x3840", 2 * 1024 * 3840 * 3840, lambda: F.linear(x, w)),
    ("linear_bf16w_1024x3840x3840", 2 * 1024 * 3840 * 3840, lambda: F.linear(x, wb.float())),
    ("attention_1024x4x128", 4 * 1024 * 1024 * 128 * 4, lambda: F.scaled_dot_product_attention(q, k, v)),
    ("conv3x3_128to128_128x128", 2 * 128 * 128 * 9 * 128 * 128, lambda: F.conv2d(image, kernel, bias, padding=1)),
]
rows = []
with torch.inference_mode():
    for name, flops, run in cases:
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        median = times[len(times) // 2]
        rows.append({"case": name, "ms": median, "gflops": flops / median / 1e6})
print(json.dumps({"implementation": "torch", "torch": torch.__version__, "threads": threads, "cases": rows}, indent=1))
