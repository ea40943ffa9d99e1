"""bench/bench_model.py runs through every scope (a tiny model: the numbers are not checked)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_model_runs_every_scope():
    """Each scope times only the variants it has (the layer scope once crashed on divided)."""
    out = subprocess.run(
        [sys.executable, "bench/bench_model.py", "--frames", "4", "--width", "64", "--depth",
         "1", "--repeats", "1", "--scopes", "layer,block,model", "--variants", "dvt,divided"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("  4 ")]
    assert [row[1] for row in rows] == ["dvt", "joint", "dvt", "joint", "divided",
                                       "dvt", "joint", "divided"]
