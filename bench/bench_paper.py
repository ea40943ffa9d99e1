"""The paper's findings on the motion suite (`dvt bench paper`, issue 28): the number of
sampled points N, the sub-clips B at T = 16, D-ST-A / D-MS-A / both, and the fusion, each
swept on its generator, `dvt_tiny` with the `dvt train` defaults, 10 epochs, 3 seeds (results
in BENCHMARKS.md and README.md).

    python bench/bench_paper.py                         # every study, 3 seeds, 2 jobs
    python bench/bench_paper.py --studies fusion --seeds 0,1,2 --jobs 1
"""

from __future__ import annotations

import argparse
import time

from dvt_model.paper_studies import STUDIES, PaperStudies, run_paper_studies, select_studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", default=",".join(STUDIES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes")
    parser.add_argument("--out", default="bench_out/paper")
    parser.add_argument("--data-dir", default="bench_out/motion/data",
                        help="generated videos and stores, shared with the motion benchmark")
    args = parser.parse_args()
    paper = PaperStudies(out=args.out, studies=select_studies(args.studies.split(",")),
                         seeds=tuple(int(s) for s in args.seeds.split(",")),
                         epochs=args.epochs, jobs=args.jobs, data_dir=args.data_dir)
    start = time.perf_counter()
    run_paper_studies(paper)
    with open(f"{paper.out}/paper_studies.md", encoding="utf-8") as handle:
        print("\n" + handle.read())
    print(f"charts: {paper.out}/paper_<study>.png; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
