"""`dvt bench paper` on a tiny grid: real videos, stores and training runs, the reports and
verdicts written, a rerun trains nothing, a configuration two studies share is trained once."""

from __future__ import annotations

import csv
import os
from dataclasses import replace

import pytest

from dvt_model.paper_studies import (
    STUDIES,
    PaperStudies,
    Study,
    run_paper_studies,
    select_studies,
    verdict,
)
from dvt_prep.errors import InputError


def test_paper_studies_smoke(tmp_path):
    studies = (replace(STUDIES["attention"], values=("dst", "dst_dms"),
                       generators=("small_object",)),
               replace(STUDIES["fusion"], values=("mixer", "mlp"),
                       generators=("small_object",)))
    paper = PaperStudies(out=str(tmp_path / "paper"), studies=studies, seeds=(0,),
                         train_per_class=2, val_per_class=1, epochs=1, jobs=1,
                         model_options={"depth": 1, "embed_dim": 48})
    messages = []
    rows = run_paper_studies(paper, echo=messages.append)
    assert len(rows) == 4 and all(0 <= r["top1"] <= 1 for r in rows)
    runs = os.listdir(tmp_path / "paper" / "small_object" / "seed=0" / "runs")
    assert len(runs) == 3  # dst_dms with the mixer is both studies' run: trained once
    report = (tmp_path / "paper" / "paper_studies.md").read_text()
    assert "## attention" in report and "## fusion" in report and "| chance | 25 |" in report
    assert report.count("- small_object: ") == 2
    with open(tmp_path / "paper" / "paper_studies.csv", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    for name in ("attention", "fusion"):
        assert (tmp_path / "paper" / f"paper_{name}.png").stat().st_size > 0
    stamps = {r: os.path.getmtime(tmp_path / "paper" / "small_object" / "seed=0" / "runs" / r /
                                  "result.json") for r in runs}
    assert run_paper_studies(paper, echo=messages.append) == rows  # kept, not retrained
    assert stamps == {r: os.path.getmtime(tmp_path / "paper" / "small_object" / "seed=0" /
                                          "runs" / r / "result.json") for r in runs}


def test_verdicts():
    study = STUDIES["points"]

    def table(means: list[float], std: float = 0.02) -> dict:
        return {("points", "distractors", v): (m, std, 3)
                for v, m in zip(study.values, means, strict=True)}
    assert verdict(study, table([0.4, 0.6, 0.8, 0.9, 0.9]), "distractors", 32).startswith(
        "holds")
    assert verdict(study, table([0.4, 0.6, 0.8, 0.7, 0.9]), "distractors", 32).startswith(
        "does not hold")
    assert verdict(study, table([1.0] * 5), "distractors", 32).startswith("cannot tell")
    fusion = STUDIES["fusion"]
    cells = {("fusion", "g", "mixer"): (0.9, 0.0, 3), ("fusion", "g", "mlp"): (0.7, 0.0, 3)}
    assert verdict(fusion, cells, "g", 32).startswith("holds")
    cells[("fusion", "g", "mlp")] = (0.88, 0.0, 3)  # within one video of 32
    assert verdict(fusion, cells, "g", 32).startswith("cannot tell")


def test_bad_study_names_and_factors():
    with pytest.raises(InputError, match="unknown study nope"):
        select_studies(["points", "nope"])
    with pytest.raises(InputError, match="factor must be one of"):
        PaperStudies(studies=(Study("x", "depth", (1, 2), ("small_object",), 1, ""),))
