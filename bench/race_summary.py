#!/usr/bin/env python3
"""Gathers bench/race.sh's outputs in OUT into OUT/race.json (the bench/results/<date>-<card>-race.json
format) and prints the race table. Usage: race_summary.py OUT."""
import datetime, json, os, sys

out = sys.argv[1]


def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        return {}


def first_line_numbers(name):
    try:
        return [float(x) for x in open(os.path.join(out, name)).read().split()]
    except Exception:
        return []


card = open(os.path.join(out, "gpu.txt")).read().strip() if os.path.exists(os.path.join(out, "gpu.txt")) else "?"
commit = open(".carrypack/commit.txt").read().strip() if os.path.exists(".carrypack/commit.txt") else "?"
z = load("zimage-bf16.json")
d = load("diffusers.json")
cold, warm = first_line_numbers("first_cold.txt"), first_line_numbers("first_warm.txt")
fields = ["e2e_1024_s", "forward_512_ms", "forward_1024_ms", "text_encoder_ms", "vae_decode_1024_ms", "batch4_per_image_s"]
race = {
    "card": card, "commit": commit, "date": datetime.date.today().isoformat(),
    "transformer_files": os.environ.get("TRANSFORMER_DTYPE", "bf16"),
    "workload": "random-weight Z-Image-Turbo, real configuration (tools/fullsize/make_random_zimage.py), 1024x1024, "
                "8 steps, guidance 0, bf16, prompt 'a red fox in the snow', seed 42, text encoder included",
    "zimage-bf16": {k: z.get(k) for k in fields} | {
        "first_image_after_start_s": {"cold_kernel_cache": cold[0] if cold else None,
                                      "warm_kernel_cache": warm[0] if warm else None},
        "peak_gpu_mib": max(cold[1:] + warm[1:] + first_line_numbers("zimage-bf16-peak.txt") or [0]),
        "psnr_vs_diffusers_db": d.get("psnr_zimage_vs_diffusers_db"), "load_s": z.get("load_s")},
    "zimage-reference-ops": load("zimage-reference-ops.json"),
    "zimage-fp8": ({k: load("zimage-fp8.json").get(k) for k in fields} | {
        "peak_gpu_mib": (first_line_numbers("zimage-fp8-peak.txt") or [None])[0],
        "psnr_vs_diffusers_db": d.get("psnr_zimage_fp8_vs_diffusers_bf16_db"),
        "psnr_vs_diffusers_fp8_emulated_db": d.get("psnr_zimage_fp8_vs_diffusers_fp8_db"),
        "psnr_diffusers_fp8_emulated_vs_bf16_db": d.get("psnr_diffusers_fp8_vs_diffusers_bf16_db"),
        "load_s": load("zimage-fp8.json").get("load_s")}) if load("zimage-fp8.json") else None,
    "diffusers-eager": d.get("diffusers-eager"),
    "diffusers-compiled": d.get("diffusers-compiled"),
    "diffusers_process_peak_gpu_mib": (first_line_numbers("diffusers-peak.txt") or [None])[0],
}
race["zimage-reference-ops"].pop("profile", None)
json.dump(race, open(os.path.join(out, "race.json"), "w"), indent=1)
print(f"{'':24}" + "".join(f"{f:>20}" for f in fields))
for name in ["zimage-bf16", "zimage-fp8", "zimage-reference-ops", "diffusers-eager", "diffusers-compiled"]:
    row = race.get(name) or {}
    print(f"{name:24}" + "".join(f"{(row.get(f) if row.get(f) is not None else float('nan')):20.3f}" for f in fields))
print("first image after start (zimage):", race["zimage-bf16"]["first_image_after_start_s"],
      "| diffusers eager/compiled:", (race["diffusers-eager"] or {}).get("first_image_after_start_s"),
      (race["diffusers-compiled"] or {}).get("first_image_after_start_s"))
print("peak GPU MiB zimage", race["zimage-bf16"]["peak_gpu_mib"], "diffusers", race["diffusers_process_peak_gpu_mib"],
      "| PSNR", race["zimage-bf16"]["psnr_vs_diffusers_db"],
      "| fp8 PSNR vs diffusers bf16 / fp8-emulated:", (race["zimage-fp8"] or {}).get("psnr_vs_diffusers_db"),
      (race["zimage-fp8"] or {}).get("psnr_vs_diffusers_fp8_emulated_db"))
