"""Benchmark of the models (issue: the DVT and its baselines), ratios to joint attention.

Forward+backward wall time and peak extra memory of one block and of the whole model, for the
DVT block (D-ST-A + D-MS-A, mixer), the D-ST-A-only block, joint and divided attention, at
T in {8, 16, 32}, 224x224, ViT-S width (384, 6 heads), batch 1. Each measurement runs in its own
process so that peak memory (max RSS above the process's level before the step) is its own.
The scaling exponent of the DVT from T=16 to 32 is log(t32 / t16) / log 2.

Run: `dvt bench model` or `python bench/bench_model.py [--frames 8,16,32] [--width 384]
[--depth 12] [--device cpu|cuda]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys

VARIANTS = {  # name -> model keywords
    "dvt": dict(attention="dst_dms", cue="md_rgbr"),
    "dst": dict(attention="dst", cue="md_rgbr"),
    "joint": dict(attention="joint", cue="none"),
    "divided": dict(attention="divided", cue="none"),
}


def measure(variant: str, frames: int, scope: str, width: int, depth: int, device: str,
            repeats: int) -> dict:
    """In this process: seconds per forward+backward (median) and peak extra memory (MiB)."""
    import resource
    import time

    import torch

    from dvt_model import create_model
    from dvt_model.info import example_batch
    from dvt_model.layers.blocks import MotionContext

    torch.manual_seed(0)
    heads = width // 64
    model = create_model("dvt_small", num_classes=400, num_frames=frames, embed_dim=width,
                         num_heads=heads, depth=depth if scope == "model" else 1,
                         **VARIANTS[variant]).to(device)
    batch = {k: v.to(device) for k, v in example_batch(model).items()}
    if scope == "block":
        block = model.blocks[0]
        tokens = torch.randn(1, frames, 196, width, device=device, requires_grad=True)
        context = MotionContext(grid=model.grid)
        if model.motion_cue is not None:
            with torch.no_grad():
                context.path, context.cue = model.motion_cue(
                    batch, grid=model.grid, num_frames=frames,
                    frames_per_subclip=model.config.frames_per_subclip)

        def step():
            block(tokens, context).sum().backward()
    else:
        def step():
            model(batch).sum().backward()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return {"seconds": sorted(times)[len(times) // 2], "peak_mib": peak}


def run_child(*args) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(args)]
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="8,16,32")
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return
    frame_counts = [int(f) for f in args.frames.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, device {args.device}; "
          f"width {args.width}, 224x224, batch 1, forward+backward")
    results = {}
    for scope in ("block", "model"):
        print(f"\n{scope} ({'one block' if scope == 'block' else f'depth {args.depth}'}):")
        print(f"{'T':>3} {'variant':<8} {'seconds':>8} {'x joint':>8} {'peak MiB':>9} "
              f"{'x joint':>8}")
        for frames in frame_counts:
            for variant in VARIANTS:
                if scope == "model" and variant == "dst":
                    continue
                result = run_child(variant, frames, scope, args.width, args.depth,
                                   args.device, args.repeats)
                results[scope, variant, frames] = result
            joint = results[scope, "joint", frames]
            for variant in VARIANTS:
                if (scope, variant, frames) not in results:
                    continue
                r = results[scope, variant, frames]
                print(f"{frames:>3} {variant:<8} {r['seconds']:8.3f} "
                      f"{r['seconds'] / joint['seconds']:8.2f} {r['peak_mib']:9.0f} "
                      f"{r['peak_mib'] / max(joint['peak_mib'], 1):8.2f}")
    if 16 in frame_counts:
        ratio = results["block", "dst", 16]["seconds"] / results["block", "joint", 16]["seconds"]
        print(f"\nD-ST-A block / joint block at T=16: {ratio:.2f} (target <= 0.5)")
    if 16 in frame_counts and 32 in frame_counts:
        for variant in ("dvt", "joint", "divided"):
            exponent = math.log(results["model", variant, 32]["seconds"]
                                / results["model", variant, 16]["seconds"], 2)
            print(f"{variant} time exponent T=16 -> 32: {exponent:.2f}"
                  + (" (target <= 1.15)" if variant == "dvt" else ""))


if __name__ == "__main__":
    main()
