#!/usr/bin/env python3
"""Writes a random-weight Z-Image-Turbo with the real configuration, in the official Hugging Face
layout, to prove zimage's loader, key names, shapes and memory plan at full size without the real
weights (which cannot be downloaded here).

Key names and shapes come from the reference classes themselves (diffusers 0.42.1
ZImageTransformer2DModel and AutoencoderKL, transformers Qwen3Model), built on the meta device, so
nothing of model size is allocated. Values are random (small normals, norm weights 1): images are
noise. Sizes: text encoder 8.0 GB bf16 (as the Hub), VAE 168 MB bf16 (as the Hub), transformer
12.3 GB bf16 by default (the Hub stores it as 24.6 GB fp32; pass --transformer-dtype fp32 for that).

Usage: make_random_zimage.py OUT_DIR [--transformer-dtype bf16|fp32]
"""
import argparse
import json
import os
import struct
import zlib

import numpy as np
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, ZImageTransformer2DModel
from transformers import Qwen3Config, Qwen3Model

TRANSFORMER = dict(all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=3840, n_layers=30,
                   n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-05, qk_norm=True, cap_feat_dim=2560,
                   rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512])
VAE = dict(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=[128, 256, 512, 512],
           down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2,
           norm_num_groups=32, act_fn="silu", mid_block_add_attention=True, use_quant_conv=False,
           use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159, force_upcast=True,
           latents_mean=None, latents_std=None, sample_size=1024)
TEXT = dict(architectures=["Qwen3ForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=151643,
            eos_token_id=151645, head_dim=128, hidden_act="silu", hidden_size=2560, initializer_range=0.02,
            intermediate_size=9728, max_position_embeddings=40960, max_window_layers=36, model_type="qwen3",
            num_attention_heads=32, num_hidden_layers=36, num_key_value_heads=8, rms_norm_eps=1e-06,
            rope_scaling=None, rope_theta=1000000, sliding_window=None, tie_word_embeddings=True,
            torch_dtype="bfloat16", use_cache=True, use_sliding_window=False, vocab_size=151936)

BLOCK = np.random.default_rng(0).standard_normal(1 << 24, dtype=np.float32)


def values(name, shape, dtype):
    """Deterministic pseudo-random values: a window of one fixed random block, chosen by the name."""
    count = int(np.prod(shape)) if shape else 1
    if len(shape) == 1 and ("norm" in name or name.endswith("embedder.0.weight")):
        data = np.ones(count, dtype=np.float32)
    else:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = np.float32(0.05 if len(shape) == 1 else 1.0 / np.sqrt(fan_in))
        start = zlib.crc32(name.encode()) % BLOCK.size
        data = np.resize(BLOCK, start + count)[start:] * scale
    if dtype == "BF16":
        return (data.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    return data.tobytes()


def write_shards(folder, stem, tensors, dtype, shard_bytes=5_000_000_000):
    """tensors: list of (name, shape). Writes stem.safetensors or stem-0000k-of-0000n + index."""
    size = 2 if dtype == "BF16" else 4
    shards, current, current_bytes = [], [], 0
    for name, shape in tensors:
        nbytes = int(np.prod(shape)) * size
        if current and current_bytes + nbytes > shard_bytes:
            shards.append(current)
            current, current_bytes = [], 0
        current.append((name, shape))
        current_bytes += nbytes
    shards.append(current)
    names = ([f"{stem}.safetensors"] if len(shards) == 1 else
             [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    weight_map, total = {}, 0
    for file_name, shard in zip(names, shards):
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in shard:
            nbytes = int(np.prod(shape)) * size
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = file_name
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(folder, file_name), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for name, shape in shard:
                f.write(values(name, shape, dtype))
        total += offset
        print(f"  {folder}/{file_name}: {offset / 1e9:.2f} GB", flush=True)
    if len(shards) > 1:
        with open(os.path.join(folder, f"{stem}.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--transformer-dtype", choices=["bf16", "fp32"], default="bf16")
    args = ap.parse_args()
    root = args.out
    for sub in ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"]:
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    json.dump({"_class_name": "ZImagePipeline", "_diffusers_version": "0.36.0.dev0",
               "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
               "text_encoder": ["transformers", "Qwen3Model"], "tokenizer": ["transformers", "Qwen2Tokenizer"],
               "transformer": ["diffusers", "ZImageTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]},
              open(os.path.join(root, "model_index.json"), "w"), indent=2)
    json.dump({"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000,
               "use_dynamic_shifting": False, "shift": 3.0},
              open(os.path.join(root, "scheduler/scheduler_config.json"), "w"), indent=2)
    json.dump({"_class_name": "ZImageTransformer2DModel", **TRANSFORMER},
              open(os.path.join(root, "transformer/config.json"), "w"), indent=2)
    json.dump({"_class_name": "AutoencoderKL", **VAE}, open(os.path.join(root, "vae/config.json"), "w"), indent=2)
    json.dump(TEXT, open(os.path.join(root, "text_encoder/config.json"), "w"), indent=2)

    with init_empty_weights():
        transformer = ZImageTransformer2DModel(**TRANSFORMER)
        vae = AutoencoderKL(**{k: v for k, v in VAE.items()})
        text = Qwen3Model(Qwen3Config(**{k: v for k, v in TEXT.items() if k != "architectures"}))
    t_keys = [(k, tuple(v.shape)) for k, v in transformer.state_dict().items()]
    v_keys = [(k, tuple(v.shape)) for k, v in vae.state_dict().items()]
    e_keys = [("model." + k, tuple(v.shape)) for k, v in text.state_dict().items()]
    print(f"transformer {len(t_keys)} tensors, {sum(np.prod(s) for _, s in t_keys):,} parameters")
    print(f"text encoder {len(e_keys)} tensors, vae {len(v_keys)} tensors")
    write_shards(os.path.join(root, "transformer"), "diffusion_pytorch_model", t_keys,
                 "BF16" if args.transformer_dtype == "bf16" else "F32", shard_bytes=10_000_000_000)
    write_shards(os.path.join(root, "text_encoder"), "model", e_keys, "BF16", shard_bytes=4_000_000_000)
    write_shards(os.path.join(root, "vae"), "diffusion_pytorch_model", v_keys, "BF16", shard_bytes=1 << 40)
    print("tokenizer: copy the real Qwen3 tokenizer.json (tools/tokenizer/fetch_qwen_tokenizer.sh) into",
          os.path.join(root, "tokenizer"))


if __name__ == "__main__":
    main()
