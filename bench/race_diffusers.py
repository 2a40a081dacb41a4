#!/usr/bin/env python3
"""The reference half of bench/race.sh: diffusers 0.42.1 eager, then torch.compile, on the same
random-weight model and card, at the race's settings (1024², 8 steps, guidance 0, prompt
'a red fox in the snow', seed 42 on a CPU generator). Stage times come from CUDA events recorded
by forward hooks on the text encoder, the transformer and the VAE decoder during whole pipeline
runs, so nothing is re-implemented. With ZIMAGE_FP8_PNG, also the FP8 reference: the same pipeline
with the DiT's image-token projections (noise refiner and main layers: to_q/k/v/out, w1/w2/w3) quantised
as zimage's --precision fp8 does (e4m3, per-row scales amax/448 for weights and for each token's
activations, float32 products), emulated in PyTorch, and the PSNR of zimage's fp8 image against it.
Usage: race_diffusers.py MODEL OUT_JSON [ZIMAGE_PNG [ZIMAGE_FP8_PNG]]."""
import json, os, statistics, sys, time
import numpy as np
import torch
from PIL import Image
from diffusers import ZImagePipeline

model, out_path = sys.argv[1], sys.argv[2]
zimage_png = sys.argv[3] if len(sys.argv) > 3 else None
zimage_fp8_png = sys.argv[4] if len(sys.argv) > 4 else None
PROMPT = "a red fox in the snow"
start = time.perf_counter()
pipe = ZImagePipeline.from_pretrained(model, torch_dtype=torch.bfloat16).to("cuda")
pipe.set_progress_bar_config(disable=True)
load_s = time.perf_counter() - start

events = {}


def hook(module, name):
    def pre(*_):
        e = torch.cuda.Event(enable_timing=True); e.record(); events.setdefault(name, []).append([e, None])
    def post(*_):
        e = torch.cuda.Event(enable_timing=True); e.record(); events[name][-1][1] = e
    return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]


def stage_ms(name):
    torch.cuda.synchronize()
    times = [a.elapsed_time(b) for a, b in events.get(name, []) if b is not None]
    return statistics.median(times) if times else None


hook(pipe.text_encoder, "text_encoder")


def generate(size=1024, batch=1):
    return pipe(prompt=PROMPT, height=size, width=size, num_inference_steps=8, guidance_scale=0.0,
                num_images_per_prompt=batch, generator=torch.Generator("cpu").manual_seed(42)).images


def timed(n, **kw):
    times, images = [], None
    for _ in range(n):
        torch.cuda.synchronize(); t = time.perf_counter(); images = generate(**kw); torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times), images


def vae_ms():
    latent = torch.randn(1, 16, 128, 128, device="cuda", dtype=torch.bfloat16)
    times = []
    with torch.no_grad():
        for i in range(4):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record(); pipe.vae.decode(latent, return_dict=False); b.record(); b.synchronize()
            if i: times.append(a.elapsed_time(b))
    return statistics.median(times)


def variant(label, transformer, other_shapes=True):
    """Each new shape recompiles a compiled transformer (tens of seconds): other_shapes=False skips
    the 512² and batch-4 runs there."""
    handles = hook(transformer, f"transformer_{label}")
    t = time.perf_counter(); generate(); first = time.perf_counter() - t
    f512 = None
    if other_shapes:
        events.clear()
        generate(size=512)
        generate(size=512)
        f512 = statistics.median(a.elapsed_time(b) for a, b in events[f"transformer_{label}"][8:])
    events.clear()
    e2e, images = timed(3)
    r = {"e2e_1024_s": round(e2e, 3), "forward_1024_ms": stage_ms(f"transformer_{label}"),
         "forward_512_ms": f512, "text_encoder_ms": stage_ms("text_encoder"), "vae_decode_1024_ms": vae_ms(),
         "first_call_s": round(first, 2)}
    r["batch4_per_image_s"] = round(timed(1, batch=4)[0] / 4, 3) if other_shapes else None
    for h in handles:
        h.remove()
    return r, images[0]


results = {"torch": torch.__version__, "load_s": round(load_s, 2)}
results["diffusers-eager"], image = variant("eager", pipe.transformer)
image.save(out_path.replace(".json", "-seed42.png"))
results["diffusers-eager"]["first_image_after_start_s"] = round(load_s + results["diffusers-eager"]["first_call_s"], 2)
if zimage_png:
    z = np.asarray(Image.open(zimage_png).convert("RGB")).astype(float)
    d = np.asarray(image.convert("RGB")).astype(float)
    mse = ((z - d) ** 2).mean()
    results["psnr_zimage_vs_diffusers_db"] = round(10 * np.log10(255 ** 2 / max(mse, 1e-9)), 2)
    results["mean_abs_pixel_diff"] = round(float(np.abs(z - d).mean()), 3)


def psnr(png, image):
    if not os.path.exists(png):
        return None
    z = np.asarray(Image.open(png).convert("RGB")).astype(float)
    d = np.asarray(image.convert("RGB")).astype(float)
    return round(10 * np.log10(255 ** 2 / max(((z - d) ** 2).mean(), 1e-9)), 2)


def fp8_rows(t):
    """Per-row e4m3 quantisation as Kernels/quantize.cu: (codes as float32, scales)."""
    f = t.float()
    amax = f.abs().amax(-1, keepdim=True)
    inverse = torch.where(amax > 0, 448.0 / amax, torch.ones_like(amax))
    scale = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    return (f * inverse).clamp(-448, 448).to(torch.float8_e4m3fn), scale


if zimage_fp8_png:
    patched = []
    for block in list(pipe.transformer.noise_refiner) + list(pipe.transformer.layers):
        for linear in (block.attention.to_q, block.attention.to_k, block.attention.to_v, block.attention.to_out[0],
                       block.feed_forward.w1, block.feed_forward.w2, block.feed_forward.w3):
            qw, sw = fp8_rows(linear.weight.data)

            def forward(x, qw=qw, sw=sw, bias=linear.bias):
                qx, sx = fp8_rows(x)
                y = (qx.float().reshape(-1, qx.shape[-1]) @ qw.float().t()) * sx.reshape(-1, 1) * sw.reshape(1, -1)
                if bias is not None:
                    y = y + bias.float()
                return y.to(x.dtype).reshape(*x.shape[:-1], qw.shape[0])
            patched.append((linear, linear.forward))
            linear.forward = forward
    fp8_image = generate()[0]
    fp8_image.save(out_path.replace(".json", "-fp8-seed42.png"))
    for linear, original in patched:
        linear.forward = original
    results["psnr_zimage_fp8_vs_diffusers_fp8_db"] = psnr(zimage_fp8_png, fp8_image)
    results["psnr_zimage_fp8_vs_diffusers_bf16_db"] = psnr(zimage_fp8_png, image)
    results["psnr_diffusers_fp8_vs_diffusers_bf16_db"] = psnr(out_path.replace(".json", "-fp8-seed42.png"), image)
json.dump(results, open(out_path, "w"), indent=1)   # the eager half survives a compile failure
pipe.transformer = torch.compile(pipe.transformer)
import os
results["diffusers-compiled"], _ = variant("compiled", pipe.transformer, os.environ.get("RACE_COMPILED_ALL") == "1")
results["diffusers-compiled"]["first_image_after_start_s"] = round(load_s + results["diffusers-compiled"]["first_call_s"], 2)
json.dump(results, open(out_path, "w"), indent=1)
print(json.dumps(results, indent=1))
