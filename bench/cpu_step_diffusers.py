#!/usr/bin/env python3
"""CPU seconds per denoising step for a mid-size Z-Image DiT in diffusers 0.42.1.

Writes a random-weight ZImageTransformer2DModel (dim 768, 6 heads of 128, 8 layers, 2 refiner
layers, the real caption width 2560) to OUT_DIR/transformer in the official layout, plus the
inputs (latent for 512x512, a 64-token caption, t) to OUT_DIR/inputs.safetensors, then times
one transformer forward (= one step at guidance 0) in float32 with THREADS threads.
Usage: cpu_step_diffusers.py OUT_DIR THREADS REPEATS. Prints JSON.
"""
import json
import sys
import time

import torch
from diffusers import ZImageTransformer2DModel
from safetensors.torch import save_file

out, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
config = dict(all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=768, n_layers=8, n_refiner_layers=2,
              n_heads=6, n_kv_heads=6, norm_eps=1e-5, qk_norm=True, cap_feat_dim=2560, rope_theta=256.0,
              t_scale=1000.0, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512])
model = ZImageTransformer2DModel(**config).eval()
with torch.no_grad():
    for p in model.parameters():   # no zero-initialised tensors: timings on real-looking values
        p.copy_(torch.randn_like(p) * (0.02 if p.ndim > 1 else 0.1) + (1.0 if p.ndim == 1 else 0.0))
model.save_pretrained(f"{out}/transformer", safe_serialization=True)
x = torch.randn(16, 1, 64, 64)
cap = torch.randn(64, 2560)
t = torch.tensor([0.5])
save_file({"x": x.contiguous(), "cap": cap.contiguous(), "t": t}, f"{out}/inputs.safetensors")
with torch.inference_mode():
    model([x], t, [cap])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model([x], t, [cap])
        times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"implementation": "diffusers", "torch": torch.__version__, "threads": threads,
                  "seconds_per_step": times[len(times) // 2], "all": times}))
