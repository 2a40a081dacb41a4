#!/usr/bin/env python3
"""PyTorch's bf16 rate for the product ZImageBench cuda-check times: [4096,3840] · [10240,3840]^T.

Median of 50 runs timed with CUDA events after 5 warm-ups; prints JSON.
"""
import json

import torch

m, k, n = 4096, 3840, 10240
x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
for _ in range(5):
    torch.nn.functional.linear(x, w)
times = []
for _ in range(50):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.nn.functional.linear(x, w)
    end.record()
    end.synchronize()
    times.append(start.elapsed_time(end))
times.sort()
ms = times[len(times) // 2]
print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name(),
                  "median_ms": ms, "tflops": 2 * m * k * n / (ms / 1e3) / 1e12}))
