#!/usr/bin/env python3
"""Rows of the VRAM planner's Done-when table (issue 10), from one `zimage generate` run each.

    vram_table.py row LABEL BUDGET BATCH PRECISION RC WALL_MS LOG SAMPLES ADVISE [MODE]  -> one JSON row on stdout
    vram_table.py table ROWS_JSONL DEVICES_TXT OUT_JSON                          -> the table file

`row` reads the run's log (the `plan:` line, the time line, `per image:`, `peak device memory`), the
nvidia-smi samples (MiB, one a line, every 50 ms), and `zimage advise --json` for the same budget and
batch (the prediction; with MODE, a run forced into that memory mode by `--memory-mode`, the costed
candidate of that mode, weights and VAE tiling). A run that failed keeps its error and nulls instead of numbers. Standard
library only; tested with a fake `zimage` (bench/test_device_vram.sh).
"""
import json
import re
import sys

GIB = 1 << 30
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def size(text):
    """'22.12 GiB' -> bytes."""
    number, unit = text.split()
    return float(number) * UNITS[unit]


def parse_log(text):
    """What `zimage generate` printed: plan line, refusal, timings, pool marks."""
    lines = text.splitlines()
    out = {"plan_line": None, "error": None, "images": None, "process_s": None, "loading_s": None,
           "generating_s": None, "per_image_s": None, "pool_peak_in_use_bytes": None, "pool_peak_held_bytes": None}
    for line in lines:
        if line.startswith("plan: "):
            out["plan_line"] = line[len("plan: "):]
        m = re.search(r"(\d+) image\(s\) in ([0-9.]+) s \(loading ([0-9.]+) s, generating ([0-9.]+) s\)", line)
        if m:
            out["images"] = int(m.group(1))
            out["process_s"], out["loading_s"], out["generating_s"] = (float(m.group(i)) for i in (2, 3, 4))
        m = re.match(r"per image: (.*) \(the first", line)
        if m:
            out["per_image_s"] = [float(x.split()[0]) for x in m.group(1).split(", ")]
        m = re.search(r"peak device memory \([^)]*\): peak ([0-9.]+ \w+) in tensors, ([0-9.]+ \w+) held", line)
        if m:
            out["pool_peak_in_use_bytes"], out["pool_peak_held_bytes"] = int(size(m.group(1))), int(size(m.group(2)))
    errors = [l for l in lines if l.startswith("Error:") or "refusing to start" in l]
    if errors:
        out["error"] = errors[-1]
    return out


def plan_label(plan):
    return f"{plan['weights']}, {plan['mode']}, " + ("tiled VAE decode" if plan["tiled_decode"] else "full VAE decode")


def prediction(advice, budget, mode=None):
    """The plan this run should follow and its predicted peak and seconds (None where none)."""
    if not advice:
        return None, "no advice (zimage advise failed)"
    decision = advice.get("this_build") or {}
    if mode:
        # Forced by --memory-mode: the planner's weights and tiling, the forced mode's costing.
        chosen = decision.get("chosen") or {}
        for plan in decision.get("candidates") or []:
            if (plan["mode"] == mode and plan["weights"] == chosen.get("weights")
                    and plan["tiled_decode"] == chosen.get("tiled_decode")):
                return plan, f"--memory-mode {mode} over the planner's {plan_label(chosen)}"
        return None, f"no {mode} candidate costed"
    if budget == "none":
        # Unplanned: bf16 (auto precision on a GPU), everything resident, full decode.
        for plan in decision.get("candidates") or []:
            if plan["weights"] == "bf16" and plan["mode"] == "resident" and not plan["tiled_decode"]:
                return plan, "unplanned (--vram-budget none): bf16, resident, full VAE decode"
        return None, "no bf16 resident plan costed"
    return decision.get("chosen"), decision.get("reason")


def within(measured, predicted, share):
    if measured is None or predicted is None or measured <= 0:
        return None
    return abs(measured - predicted) / measured <= share


def row(label, budget, batch, precision, rc, wall_ms, log, samples, advise, mode=None):
    text = read(log)
    parsed = parse_log(text)
    mib = [float(x) for x in read(samples).split() if re.fullmatch(r"[0-9.]+", x)]
    try:
        advice = json.loads(read(advise))
    except ValueError:
        advice = None
    plan, reason = prediction(advice, budget, mode or None)
    batch = int(batch)
    measured_peak = int(max(mib) * (1 << 20)) if mib else None
    per_image = parsed["generating_s"] / batch if parsed["generating_s"] is not None and int(rc) == 0 else None
    repeated = parsed["per_image_s"][1:] if parsed["per_image_s"] else None
    result = {
        "label": label, "budget": budget if budget == "none" else f"{budget} GiB", "batch": batch, "precision": precision,
        "memory_mode_forced": mode or None, "exit": int(rc), "wall_s": int(wall_ms) / 1000, "error": parsed["error"] if int(rc) != 0 else None,
        "plan_line": parsed["plan_line"],
        "plan": plan_label(plan) if plan else None, "settings": plan.get("settings") if plan else None,
        "planner_reason": reason,
        "measured_peak_bytes": measured_peak,
        "measured_peak_gib": round(measured_peak / GIB, 3) if measured_peak else None,
        "baseline_mib": mib[0] if mib else None,
        "pool_peak_in_use_bytes": parsed["pool_peak_in_use_bytes"], "pool_peak_held_bytes": parsed["pool_peak_held_bytes"],
        "loading_s": parsed["loading_s"], "generating_s": parsed["generating_s"],
        "measured_seconds_per_image": round(per_image, 4) if per_image is not None else None,
        "per_image_s": parsed["per_image_s"],
        "repeated_prompt_seconds_per_image": round(sum(repeated) / len(repeated), 4) if repeated else None,
        "predicted_peak_bytes": plan["peak_bytes"] if plan else None,
        "predicted_peak_gib": round(plan["peak_bytes"] / GIB, 3) if plan else None,
        # One process, one prompt: every image of the batch shares one new prompt.
        # A fresh process: the first image pays the one-time setup (shared by the batch's images).
        "predicted_seconds_per_image": (plan["seconds_per_image_new_prompt"]
                                        + plan.get("first_image_overhead_seconds", 0) / batch) if plan else None,
        "predicted_seconds_repeated_prompt": plan["seconds_per_image"] if plan else None,
    }
    if int(rc) != 0 and not result["error"]:
        result["error"] = " | ".join(text.strip().splitlines()[-2:]) or f"exit {rc} with no output"
    if budget != "none" and measured_peak is not None and int(rc) == 0:
        result["under_budget"] = measured_peak <= float(budget) * GIB
    result["within_10pct_memory"] = within(measured_peak, result["predicted_peak_bytes"], 0.10) if int(rc) == 0 else None
    result["within_25pct_time"] = within(per_image, result["predicted_seconds_per_image"], 0.25)
    result["within_25pct_repeated_time"] = within(result["repeated_prompt_seconds_per_image"],
                                                  result["predicted_seconds_repeated_prompt"], 0.25)
    return result


def table(rows_path, devices_path, out_path):
    rows = [json.loads(line) for line in read(rows_path).splitlines() if line.strip()]
    repeat = {r["label"]: r for r in rows if r["label"].startswith("repeat-")}
    summary = {
        "runs": len(rows), "failed_or_refused": sum(1 for r in rows if r["exit"] != 0),
        "memory_within_10pct": sum(1 for r in rows if r.get("within_10pct_memory")),
        "time_within_25pct": sum(1 for r in rows if r.get("within_25pct_time")),
        "every_run_under_its_budget": all(r.get("under_budget", True) for r in rows),
        "repeated_prompt_second_image_s": {k: v.get("per_image_s") for k, v in repeat.items()},
    }
    document = {"devices": read(devices_path).strip()[:600], "workload": "zimage generate 1024x1024, 8 steps, "
                "one fresh process a row, nvidia-smi memory.used every 50 ms (whole device)",
                "summary": summary, "rows": rows}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    if len(sys.argv) in (11, 12) and sys.argv[1] == "row":
        print(json.dumps(row(*sys.argv[2:])))
    elif len(sys.argv) == 5 and sys.argv[1] == "table":
        table(*sys.argv[2:])
    else:
        sys.exit(__doc__)
