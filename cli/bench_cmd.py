"""`dvt bench [NAME...]`: run the benchmarks in bench/ (each prints ratios to its baseline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


@click.command()
@click.argument("names", nargs=-1)
def bench(names: tuple[str, ...]) -> None:
    """Run benchmarks (default: all of bench/bench_*.py); record results in BENCHMARKS.md."""
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    available = {p.stem.removeprefix("bench_"): p for p in scripts}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise click.BadParameter(f"unknown benchmark(s) {', '.join(unknown)}; available: "
                                 f"{', '.join(available)}")
    for name in names or tuple(available):
        click.echo(f"== {name}")
        code = subprocess.call([sys.executable, str(available[name])],
                               cwd=BENCH_DIR.parent)
        if code:
            sys.exit(code)
