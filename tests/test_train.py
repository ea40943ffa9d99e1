"""Training, resume, DDP gradients, evaluation over views, the ablation runner, bad configs."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dvt_model.ablate import run_ablation
from dvt_model.data import VideoClipDataset
from dvt_model.evaluate import evaluate_run
from dvt_model.metrics_log import MetricsLog
from dvt_model.predict import predict
from dvt_model.train import load_run, train
from dvt_model.train_config import TrainConfig
from dvt_prep.encode import EncodeSettings
from dvt_prep.errors import InputError
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import collect_inputs
from dvt_prep.motion_suite import write_split
from dvt_prep.parallel import prep_parallel
from tests.conftest import run_dvt


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory):
    """16 generated videos of 4 motion classes (small objects moving right, left, up, down),
    prepped (rgb, md, rgbr, rgbd) at 64x64."""
    folder = tmp_path_factory.mktemp("motion")
    _, labels = write_split(str(folder), "small_object", videos_per_class=4, split="train")
    store = str(folder / "train.zarr")
    inputs = [type(v)(f"train/{v.video_id}", v.path) for v in collect_inputs([str(folder / "train")])]
    settings = PrepSettings(cues=("rgb", "md", "rgbr", "rgbd"), rgb_codec="lossless",
                            encode=EncodeSettings(size=64))
    report = prep_parallel(inputs, store, settings, workers=1)
    assert not report.failed and len(report.done) == 16
    return store, labels


def _config(motion_data, out, **overrides) -> TrainConfig:
    store, labels = motion_data
    values = dict(store=[store], labels=labels, out=str(out), model="dvt_tiny", epochs=3,
                  batch_size=4, lr=1e-3, num_workers=0, quiet=True, flip=False,
                  model_options={"depth": 1})
    return TrainConfig(**{**values, **overrides})


def _losses(run_dir) -> list[float]:
    return [r["loss"] for r in MetricsLog.read(str(run_dir)) if r["kind"] == "step"]


def test_two_steps_end_to_end_and_loss_decreases(motion_data, tmp_path):
    result = train(_config(motion_data, tmp_path / "two", max_steps=2))
    assert result["step"] == 2 and np.isfinite(result["loss"])
    for name in ("last.pt", "config.yaml", "metrics.jsonl", "metrics.csv"):
        assert (tmp_path / "two" / name).is_file(), name
    # A tiny set (one batch of 8 clips) learnt for a few steps, with the training defaults.
    store, _ = motion_data
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("video_id,label\n" + "".join(
        f"train/{name}_00{n},{name}\n" for name in ("right", "left", "up", "down")
        for n in range(2)))
    config = TrainConfig(store=[store], labels=str(tiny), out=str(tmp_path / "tiny"),
                         model="dvt_tiny", epochs=12, batch_size=8, num_workers=0, quiet=True,
                         skip_missing=True)
    with pytest.warns(UserWarning, match="skipping"):
        train(config)
    losses = _losses(tmp_path / "tiny")
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_gives_identical_parameters_and_losses(motion_data, tmp_path, num_workers):
    straight = _config(motion_data, tmp_path / "straight", max_steps=6, num_workers=num_workers)
    train(straight)
    split = replace(straight, out=str(tmp_path / "split"), max_steps=3)
    train(split)
    train(replace(split, max_steps=6), resume=True)  # crosses an epoch boundary (4 steps each)
    assert _losses(tmp_path / "split") == _losses(tmp_path / "straight")
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    weights = load_file(tmp_path / "split" / "last.safetensors")
    assert weights.keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(weights[key], b["model"][key]), key


class _RunsAShellCommand:
    """Unpickling this runs `touch <marker>`: what a crafted checkpoint from elsewhere can do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_crafted_checkpoint_is_refused_and_runs_nothing(motion_data, tmp_path):
    store, labels = motion_data
    run = tmp_path / "run"
    train(_config(motion_data, run, max_steps=1))
    honest = torch.load(run / "last.pt", weights_only=True)
    marker = tmp_path / "ran"
    for name in ("last.pt", "best.pt"):
        torch.save({**honest, "extra": _RunsAShellCommand(marker)}, run / name)
    commands = {"eval": ["eval", run, "--labels", labels, "--num-workers", "0"],
                "resume": ["train", "--resume", run, "--max-steps", "2", "-q"]}
    for what, args in commands.items():
        result = run_dvt(*args)
        assert result.exit_code != 0, (what, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "refused" in lines[0] and "--trust-checkpoint" in lines[0], \
            (what, result.output)
        assert "posix.system" in lines[0]
        assert not marker.exists(), what
    # An old-format run (RNG states as NumPy/Python tuples) loads when trusted, and resumes.
    old = {**honest, "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}}
    torch.save(old, run / "last.pt")
    (run / "best.pt").unlink()
    refused = run_dvt("train", "--resume", run, "--max-steps", "2", "-q")
    assert refused.exit_code != 0 and "numpy" in refused.output, refused.output
    resumed = run_dvt("train", "--resume", run, "--max-steps", "2", "-q", "--trust-checkpoint")
    assert resumed.exit_code == 0, resumed.output
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 2


def test_resume_reports_bad_options_before_reading_the_checkpoint(motion_data, tmp_path):
    run = tmp_path / "run"
    train(_config(motion_data, run, max_steps=1))
    marker = tmp_path / "ran"
    torch.save({"evil": _RunsAShellCommand(marker)}, run / "last.pt")
    result = run_dvt("train", "--resume", run, "--lr", "-1", "--trust-checkpoint")
    assert result.exit_code != 0 and "lr must be positive" in result.output, result.output
    assert not marker.exists()


DDP_SCRIPT = """
import sys, torch, torch.distributed as dist
from dvt_model.train import build_datasets, setup_distributed, training_loss
from dvt_model.train_config import TrainConfig
from dvt_model.data import collate, read_labels
from dvt_model.model import VideoTransformer
from torch.nn.parallel import DistributedDataParallel
store, labels, batch_size, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
config = TrainConfig(store=[store], labels=labels, batch_size=batch_size, flip=False,
                     model_options={"depth": 1})
device, rank, world = setup_distributed("cpu")
torch.manual_seed(0)
model = VideoTransformer(config.model_config(read_labels(labels).num_classes))
train_set, _ = build_datasets(config, model)
train_set.set_epoch(0)
iterator = iter(train_set)
batch = collate([next(iterator) for _ in range(batch_size)])
wrapped = DistributedDataParallel(model) if world > 1 else model
training_loss(wrapped, batch, config, amp=False).backward()
if rank == 0:
    torch.save({n: p.grad for n, p in model.named_parameters()}, out)
if world > 1:
    dist.destroy_process_group()
"""


def test_ddp_two_processes_match_one_process_with_twice_the_batch(motion_data, tmp_path):
    store, labels = motion_data
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_port", "29533", str(script), store, labels, "2",
                    str(tmp_path / "ddp.pt")], check=True, capture_output=True, timeout=300,
                   env=env)
    subprocess.run([sys.executable, str(script), store, labels, "4", str(tmp_path / "one.pt")],
                   check=True, capture_output=True, timeout=300, env=env)
    ddp, one = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "one.pt")
    for name, grad in one.items():
        assert torch.allclose(ddp[name], grad, rtol=1e-4, atol=1e-6), name


def test_eval_averages_the_views(motion_data, tmp_path):
    train(_config(motion_data, tmp_path / "run", max_steps=1))
    model, _ = load_run(str(tmp_path / "run"))
    store, labels = motion_data
    dataset = VideoClipDataset(store, labels=labels, cues=model.inputs, num_frames=8,
                               img_size=64, mode="test", num_clips=2, num_crops=3)
    result = predict(model, dataset, batch_size=5, num_workers=0, device=torch.device("cpu"))
    by_video = defaultdict(list)
    model.eval()
    with torch.no_grad():
        for sample in dataset:
            batch = {k: v[None] if isinstance(v, torch.Tensor) else v for k, v in sample.items()}
            by_video[sample["video_id"]].append(model(batch).softmax(-1)[0].double().numpy())
    assert set(result["probs"]) == set(by_video) and len(by_video) == 16
    for video_id, views in by_video.items():
        assert len(views) == 6
        assert np.allclose(result["probs"][video_id], np.mean(views, axis=0), atol=1e-5)
    out = run_dvt("eval", tmp_path / "run", "--labels", labels, "--num-clips", "2",
                  "--num-crops", "1", "--num-workers", "0")
    assert out.exit_code == 0, out.output
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert saved["videos"] == 16 and (tmp_path / "run" / "confusion.png").stat().st_size > 0


def test_ablate_writes_reports_and_skips_finished_runs(motion_data, tmp_path):
    store, labels = motion_data
    base = _config(motion_data, tmp_path, epochs=1, val_labels=labels)
    statuses = []
    run_ablation(base, {"cue": ["md_rgbr", "none"]}, seeds=[0, 1], out_dir=str(tmp_path),
                 num_clips=1, num_crops=1, on_run=lambda n, s: statuses.append(s))
    assert statuses == ["train"] * 4
    for name in ("ablation.md", "ablation.csv", "ablation.png"):
        assert (tmp_path / name).stat().st_size > 0
    table = (tmp_path / "ablation.md").read_text()
    assert "| md_rgbr |" in table and "| none |" in table and "±" in table
    # the CSV's means are the runs' own results, each evaluated at its last checkpoint
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("runs/*/result.json"))]
    with open(tmp_path / "ablation.csv", encoding="utf-8") as handle:
        summary = {row["cue"]: float(row["top1"]) for row in csv.DictReader(handle)}
    for cue in ("md_rgbr", "none"):
        scores = [r["top1"] for r in runs if r["cue"] == cue]
        assert len(scores) == 2 and summary[cue] == pytest.approx(np.mean(scores))
    last = evaluate_run(str(tmp_path / "runs" / "cue=none,seed=1"), num_clips=1, num_crops=1,
                        checkpoint="last.pt")
    assert last["top1"] == pytest.approx([r for r in runs if r["run"] == "cue=none,seed=1"][0]
                                         ["top1"])
    statuses.clear()
    run_ablation(base, {"cue": ["md_rgbr", "none"]}, seeds=[0, 1], out_dir=str(tmp_path),
                 num_clips=1, num_crops=1, on_run=lambda n, s: statuses.append(s))
    assert statuses == ["done"] * 4


def test_bad_configs_stop_before_training_with_one_line(motion_data, tmp_path):
    store, labels = motion_data
    common = ["train", "--store", store, "--labels", labels, "--model", "dvt_tiny", "-q"]
    cases = [
        (["--cue", "flow"], "Invalid value for '--cue'"),
        (["--num-subclips", "3"], "num_frames 8 is not divisible by num_subclips 3"),
        (["--cue", "tvl1"], "has no 'tvl1'"),
        (["--batch-size", "64"], "fewer than one batch"),
    ]
    for extra, message in cases:
        out_dir = tmp_path / f"bad{len(extra[1])}"
        result = run_dvt(*common, *extra, "--out", out_dir)
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output
        assert not (out_dir / "last.pt").exists()
    with pytest.raises(InputError, match="unknown cue 'flow'"):
        TrainConfig(store=[store], labels=labels, cue="flow").validate()
