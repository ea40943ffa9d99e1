"""dvt_small against joint_small in one process, alternating, as a notebook comparing both runs
them: inference (eval, `torch.inference_mode`) and a training step (forward+backward), ViT-S,
224x224, the faster of `rounds` after a warm-up step each, and the ratio dvt / joint.

Run: `python bench/bench_alternating.py [--frames 8,16,32] [--batch 1] [--modes inf,train]
[--rounds 2]`.
"""

from __future__ import annotations

import argparse
import time

import torch

from dvt_model import create_model
from dvt_model.info import example_batch

MODELS = ("dvt_small", "joint_small")


def step(model, batch: dict, mode: str) -> None:
    if mode == "inf":
        model.eval()
        with torch.inference_mode():
            model(batch)
    else:
        model.train()
        model.zero_grad(set_to_none=True)
        model(batch).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="8,16,32")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--modes", default="inf,train")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"threads {torch.get_num_threads()}, batch {args.batch}", flush=True)
    for frames in (int(t) for t in args.frames.split(",")):
        torch.manual_seed(0)
        models = {n: create_model(n, num_classes=400, num_frames=frames) for n in MODELS}
        batches = {n: example_batch(m, batch_size=args.batch) for n, m in models.items()}
        for mode in args.modes.split(","):
            for name in MODELS:
                step(models[name], batches[name], mode)
            times: dict[str, list[float]] = {name: [] for name in MODELS}
            for _ in range(args.rounds):
                for name in MODELS:
                    start = time.perf_counter()
                    step(models[name], batches[name], mode)
                    times[name].append(time.perf_counter() - start)
            dvt, joint = (min(times[name]) for name in MODELS)
            print(f"T={frames} {mode}: dvt {dvt:.3f} s, joint {joint:.3f} s, "
                  f"ratio {dvt / joint:.3f}", flush=True)


if __name__ == "__main__":
    main()
