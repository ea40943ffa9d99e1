"""Motion benchmark (`dvt bench motion`): held-out top-1 of every cue on every generator of the
motion suite, mean ± std over seeds, against chance (issue 14; results in BENCHMARKS.md).

    python bench/bench_motion.py                      # the whole suite, 3 seeds (about an hour
                                                      # on 2 cores)
    python bench/bench_motion.py --paper              # the paper-faithful model: our additions off
    python bench/bench_motion.py --generators small_object --seeds 0 --cues md_rgbr,none
"""

from __future__ import annotations

import argparse
import time

from dvt_model.config import PAPER_FAITHFUL
from dvt_model.motion_benchmark import BENCH_CUES, MotionBenchmark, run_motion_benchmark
from dvt_prep.motion_suite import GENERATORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default=",".join(GENERATORS))
    parser.add_argument("--cues", default=",".join(BENCH_CUES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes")
    parser.add_argument("--paper", action="store_true", help="the paper-faithful model")
    parser.add_argument("--out", default=None)
    parser.add_argument("--data-dir", default="bench_out/motion/data",
                        help="generated videos and stores, shared by the variants")
    args = parser.parse_args()
    bench = MotionBenchmark(
        out=args.out or ("bench_out/motion_paper" if args.paper else "bench_out/motion"),
        generators=tuple(args.generators.split(",")), cues=tuple(args.cues.split(",")),
        seeds=tuple(int(s) for s in args.seeds.split(",")), epochs=args.epochs,
        jobs=args.jobs, model_options=PAPER_FAITHFUL if args.paper else {},
        data_dir=args.data_dir)
    start = time.perf_counter()
    run_motion_benchmark(bench)
    with open(f"{bench.out}/motion_benchmark.md", encoding="utf-8") as handle:
        print("\n" + handle.read())
    print(f"chart: {bench.out}/motion_benchmark.png; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
