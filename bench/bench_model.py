"""Benchmark of the models (issue: the DVT and its baselines), ratios to joint attention.

Forward+backward wall time and peak extra memory of one block and of the whole model, for the
DVT block (D-ST-A + D-MS-A, mixer), the D-ST-A-only block, joint and divided attention, at
T in {8, 16, 32}, 224x224, ViT-S width (384, 6 heads), batch 1. Times: each variant in its own
process (as a training run is), two warm-up steps, then the median of `--repeats`; with
`--rounds N` the variants' processes run N times interleaved and the fastest is kept. The
allocator as a user's own training loop has it: building a model applies
`dvt_model.cpu_memory.keep_freed_memory_once` (`--allocator-off`: DVT_KEEP_FREED_MEMORY=0,
glibc's defaults). Peak memory (max RSS above the process's level before the step, with every
large tensor its own mapping so that RSS follows live memory): one process per scope and T,
each variant measured alone in turn. "process MiB": the timed process's own max RSS, what
`top` shows a user (it includes the heap that the allocator setting keeps, fragmented). The
scaling exponent from T=16 to 32 is log(t32 / t16) / log 2.

Run: `dvt bench model` or `python bench/bench_model.py [--frames 8,16,32] [--width 384]
[--depth 12] [--device cpu|cuda] [--scopes layer,block,model] [--rounds 1]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys

VARIANTS = {  # name -> model keywords
    "dvt": dict(attention="dst_dms", cue="md_rgbr"),
    "dst": dict(attention="dst", cue="md_rgbr"),
    "joint": dict(attention="joint", cue="none"),
    "divided": dict(attention="divided", cue="none"),
    # space-only attention: the cheapest baseline, about what 0.5x joint's time buys
    "space": dict(attention="space", cue="none"),
    "dvt_rm": dict(attention="dst_dms", cue="md_rgbr"),  # dvt, recomputing the attention line
    # the cheaper fusions, with 4 D-MS-A points (BENCHMARKS.md: they cost accuracy on rotation
    # and zoom)
    "dvt_pair": dict(attention="dst_dms", cue="md_rgbr", fusion="mixer_pair", ms_points=4),
    "dvt_sum": dict(attention="dst_dms", cue="md_rgbr", fusion="sum", ms_points=4),
    # the branches concatenated, one linear layer (8 D-MS-A points, as the default)
    "dvt_mlp": dict(attention="dst_dms", cue="md_rgbr", fusion="mlp"),
}


MODEL_ONLY = ("dvt_rm", "dvt_pair", "dvt_sum", "dvt_mlp", "space")  # timed as whole models only
LAYER_VARIANTS = ("dst", "dvt", "joint")  # those with an attention layer to time alone


def _peak_reset() -> float:
    """Reset the process's peak RSS (Linux clear_refs) and return the current RSS in MiB."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return _status("VmRSS")


def _status(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def variants_of(scope: str) -> list[str]:
    if scope == "model":
        return [v for v in VARIANTS if v != "dst"]
    if scope == "layer":
        return list(LAYER_VARIANTS)
    return [v for v in VARIANTS if v not in MODEL_ONLY]


def steps(frames: int, scope: str, width: int, depth: int, device: str,
          variants: list[str]) -> dict:
    """One forward+backward closure per variant, all built in this process."""
    import torch

    from dvt_model import create_model
    from dvt_model.info import example_batch
    from dvt_model.layers.attention import Attention
    from dvt_model.layers.blocks import MotionContext

    out = {}
    for variant in variants:
        keywords = VARIANTS[variant]
        torch.manual_seed(0)
        model = create_model("dvt_small", num_classes=400, num_frames=frames, embed_dim=width,
                             num_heads=width // 64, depth=depth if scope == "model" else 1,
                             **keywords).to(device)
        if variant == "dvt_rm":
            model.set_grad_checkpointing(True, "mixing")
        batch = {k: v.to(device) for k, v in example_batch(model).items()}
        tokens = torch.randn(1, frames, 196, width, device=device, requires_grad=True)
        context = MotionContext(grid=model.grid)
        if model.motion_cue is not None:
            with torch.no_grad():
                context.path, context.cue = model.motion_cue(
                    batch, grid=model.grid, num_frames=frames,
                    frames_per_subclip=model.config.frames_per_subclip)
        block = model.blocks[0]
        if scope == "model":
            out[variant] = lambda m=model, b=batch: m(b).sum().backward()
        elif scope == "block":
            out[variant] = lambda blk=block, c=context, x=tokens: blk(x, c).sum().backward()
        elif variant in ("dst", "dvt"):  # the attention layers only, without norms and MLP
            out[variant] = (lambda blk=block, c=context, x=tokens:
                            sum(o.sum() for o in blk.branches(x, c)).backward())
        elif variant == "joint":
            attention = Attention(dim=width, num_heads=width // 64).to(device)
            out[variant] = lambda a=attention, x=tokens: a(x.flatten(1, 2)).sum().backward()
    return out


def measure(frames: int, scope: str, width: int, depth: int, device: str, repeats: int,
            what: str, variants: list[str]) -> dict:
    """In this process, per variant: `what="time"`: median seconds per forward+backward after
    two warm-up steps; `what="memory"`: peak extra MiB of one step (RSS high-water mark above
    the level before it; on CUDA the allocator's peak)."""
    import time

    import torch

    closures = steps(frames, scope, width, depth, device, variants)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    out = {name: [] for name in closures}
    for name, closure in closures.items():  # warm-up, and the memory peak of each alone
        for _ in range(1 if what == "memory" else 2):
            closure()
            sync()
        if what == "memory":
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            else:
                base = _peak_reset()
            closure()
            sync()
            out[name] = ((torch.cuda.max_memory_allocated() - base) / 2**20
                         if device == "cuda" else _status("VmHWM") - base)
    if what == "memory":
        return out
    for _ in range(repeats):
        for name, closure in closures.items():
            start = time.perf_counter()
            closure()
            sync()
            out[name].append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {name: [sorted(t)[len(t) // 2], rss] for name, t in out.items()}


def run_child(common: tuple, what: str, variants: list[str], allocator_off: bool) -> dict:
    """`measure(*common, what, variants)` in a fresh process."""
    command = [sys.executable, __file__, "--child", json.dumps([*common, what, variants])]
    env = dict(os.environ)
    if what == "memory" or allocator_off:
        env["DVT_KEEP_FREED_MEMORY"] = "0"
    if what == "memory":
        # A fixed mmap threshold: every large tensor is its own mapping, returned to the system
        # when freed, so the resident size follows live memory and its high-water mark is a
        # peak. (It slows allocation down: times are measured in another process without it.)
        env.update(MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="8,16,32")
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1,
                        help="time every variant's process this many times, interleaved; "
                             "report the fastest")
    parser.add_argument("--allocator-off", action="store_true",
                        help="time with glibc's default allocator settings "
                             "(DVT_KEEP_FREED_MEMORY=0)")
    parser.add_argument("--scopes", default="layer,block,model")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="which of them to run (joint is always run: the baseline)")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return
    frame_counts = [int(f) for f in args.frames.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, device {args.device}; "
          f"width {args.width}, 224x224, batch 1, forward+backward; "
          + ("glibc's default allocator settings (DVT_KEEP_FREED_MEMORY=0)"
             if args.allocator_off else "the allocator as building a model leaves it"))
    results = {}
    titles = {"layer": "attention layers only (D-ST-A; D-ST-A + D-MS-A; one joint attention)",
              "block": "one block (norms, attention, fusion, MLP)",
              "model": f"whole model, depth {args.depth}"}
    scopes = args.scopes.split(",")
    chosen = set(args.variants.split(",")) | {"joint"}
    for scope in scopes:
        print(f"\n{titles[scope]}:")
        print(f"{'T':>3} {'variant':<8} {'seconds':>8} {'x joint':>8} {'peak MiB':>9} "
              f"{'x joint':>8} {'process MiB':>11}")
        for frames in frame_counts:
            common = (frames, scope, args.width, args.depth, args.device, args.repeats)
            # Times: each variant in its own process, as a training run is (variants sharing
            # one heap fragment it, and the DVT took several steps to stop page-faulting).
            # Rounds: the variants' processes interleaved, the fastest round of each kept, so
            # that a busy spell of the machine does not land on one variant only.
            seconds, process = {}, {}
            variants = [v for v in variants_of(scope) if v in chosen]
            for _ in range(args.rounds):
                for variant in variants:
                    (time_taken, rss), = run_child(common, "time", [variant],
                                                   args.allocator_off).values()
                    seconds[variant] = min(seconds.get(variant, math.inf), time_taken)
                    process[variant] = max(process.get(variant, 0.0), rss)
            memory = run_child(common, "memory", variants, args.allocator_off)
            joint = {"seconds": seconds["joint"], "peak_mib": memory["joint"]}
            for variant in seconds:
                r = {"seconds": seconds[variant], "peak_mib": memory[variant],
                     "process_mib": process[variant]}
                results[scope, variant, frames] = r
                print(f"{frames:>3} {variant:<8} {r['seconds']:8.3f} "
                      f"{r['seconds'] / joint['seconds']:8.2f} {r['peak_mib']:9.0f} "
                      f"{r['peak_mib'] / max(joint['peak_mib'], 1):8.2f} "
                      f"{r['process_mib']:11.0f}")
    if 16 in frame_counts and "dst" in chosen:
        for scope in set(scopes) & {"layer", "block"}:
            ratio = results[scope, "dst", 16]["seconds"] / results[scope, "joint", 16]["seconds"]
            print(f"\nD-ST-A {scope} / joint {scope} at T=16: {ratio:.2f} (target <= 0.5)")
    if 16 in frame_counts and "model" in scopes and "dvt" in chosen:
        for key in ("seconds", "peak_mib"):
            ratio = results["model", "dvt", 16][key] / results["model", "joint", 16][key]
            print(f"whole dvt / joint at T=16, {key}: {ratio:.2f} (target <= "
                  f"{0.5 if key == 'seconds' else 1.0})")
    if 16 in frame_counts and 32 in frame_counts and "model" in scopes:
        for variant in [v for v in VARIANTS if v in chosen and v != "dst"]:
            exponent = math.log(results["model", variant, 32]["seconds"]
                                / results["model", variant, 16]["seconds"], 2)
            print(f"{variant} time exponent T=16 -> 32: {exponent:.2f}"
                  + (" (target <= 1.1)" if variant == "dvt" else ""))


if __name__ == "__main__":
    main()
