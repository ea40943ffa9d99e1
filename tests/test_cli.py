"""`dvt prep` / `dvt inspect`: resuming, bad input as one line, determinism across processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dvt_prep import open_store
from dvt_prep.store_reader import Store
from tests.conftest import run_dvt

CUES = "rgb,mv,md,rgbr,rgbd"


def _arrays(store_path) -> dict:
    store = open_store(store_path)
    return {(v, name): store.read(v, name) for v in store.video_ids for name in store.cues(v)}


def _one_error_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_prep_folder_then_rerun_skips(tmp_path, video_dir):
    store = tmp_path / "s.zarr"
    result = run_dvt("prep", video_dir, "-o", store, "--cues", "md,rgbd", "--size", "128")
    assert result.exit_code == 0, result.output
    assert "3 done, 0 skipped, 0 failed" in result.output
    again = run_dvt("prep", video_dir, "-o", store, "--cues", "md,rgbd", "--size", "128")
    assert again.exit_code == 0 and "0 done, 3 skipped" in again.output
    more = run_dvt("prep", video_dir / "portrait_odd.mp4", "-o", store, "--cues", "md,rgbd,rgb",
                   "--size", "128")
    assert "1 done" in more.output  # a new cue makes the video incomplete
    info = json.loads(run_dvt("inspect", store, "--json").output)
    assert info["videos"] == 3 and info["frames"] == 60
    assert set(info["bytes"]) >= {"md", "md_valid", "rgbd", "rgb"}
    text = run_dvt("inspect", store).output
    assert "portrait_odd: 20 frames 128x208 canonical" in text


def test_list_file_and_ids(tmp_path, video_dir):
    nested = tmp_path / "data" / "class_a"
    nested.mkdir(parents=True)
    shutil.copy(video_dir / "landscape_sub.mp4", nested / "clip1.mp4")
    (tmp_path / "data" / "list.txt").write_text("# videos\nclass_a/clip1.mp4\n")
    result = run_dvt("prep", tmp_path / "data" / "list.txt", "-o", tmp_path / "s.zarr",
                     "--cues", "md", "--size", "128")
    assert result.exit_code == 0, result.output
    assert open_store(tmp_path / "s.zarr").video_ids == ["class_a/clip1"]


def test_bad_inputs_one_line_nonzero_and_store_unchanged(tmp_path, video_dir):
    store = tmp_path / "s.zarr"
    assert run_dvt("prep", video_dir / "landscape_sub.mp4", "-o", store, "--cues", CUES,
                   "--size", "128").exit_code == 0
    before = _arrays(store)
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (video_dir / "landscape_odd.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("this is not a video\n")
    for name in ("truncated", "empty", "text"):
        result = run_dvt("prep", bad / f"{name}.mp4", "-o", store, "--cues", CUES,
                         "--size", "128")
        assert result.exit_code != 0, name
        assert f"failed {name}:" in result.output and "Traceback" not in result.output
    missing = run_dvt("prep", tmp_path / "nope.mp4", "-o", store)
    assert missing.exit_code != 0
    assert "nope.mp4: no such file" in _one_error_line(missing.output)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    unwritable = run_dvt("prep", video_dir / "landscape_sub.mp4", "-o", blocker / "s.zarr")
    assert unwritable.exit_code != 0
    assert "cannot" in _one_error_line(unwritable.output)
    after = _arrays(store)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    failures = open_store(store).failures
    assert set(failures) == {"truncated", "empty", "text"}
    assert all("\n" not in reason for reason in failures.values())
    # A rerun reports the earlier failure without trying; --retry-failed tries again.
    (bad / "empty.mp4").write_bytes((video_dir / "landscape_odd.mp4").read_bytes())
    rerun = run_dvt("prep", bad / "empty.mp4", "-o", store, "--cues", CUES, "--size", "128")
    assert rerun.exit_code == 1 and "--retry-failed" in rerun.output
    retry = run_dvt("prep", bad / "empty.mp4", "-o", store, "--cues", CUES, "--size", "128",
                    "--retry-failed")
    assert retry.exit_code == 0 and "1 done" in retry.output
    assert set(open_store(store).failures) == {"truncated", "text"}


def test_usage_errors_are_one_line(tmp_path, video_dir):
    result = run_dvt("prep", video_dir, "-o", tmp_path / "s.zarr", "--size", "100")
    assert result.exit_code != 0 and "multiple of 16" in _one_error_line(result.output)
    result = run_dvt("inspect", tmp_path / "none.zarr")
    assert result.exit_code != 0 and "no such store" in _one_error_line(result.output)
    assert run_dvt("--version").output.startswith("dvt, version")


def test_same_video_in_two_processes_gives_identical_arrays(tmp_path, video_dir):
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    stores = [tmp_path / "one.zarr", tmp_path / "two.zarr"]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "cli.main", "prep", str(video_dir / "landscape_odd.mp4"), "-o",
         str(store), "--cues", CUES + ",tvl1", "--size", "128", "-q"], env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) for store in stores]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    one, two = _arrays(stores[0]), _arrays(stores[1])
    assert one.keys() == two.keys() and len(one) == 8
    for key in one:
        assert np.array_equal(one[key], two[key]), key


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_folder(tmp_path, video_dir):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    result = run_dvt("prep", video_dir / "landscape_sub.mp4", "-o", folder / "s.zarr")
    assert result.exit_code != 0 and "cannot" in _one_error_line(result.output)


def test_prep_with_two_workers(tmp_path, video_dir):
    result = run_dvt("prep", video_dir, "-o", tmp_path / "s.zarr", "--cues", "md",
                     "--size", "128", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "3 done, 0 skipped, 0 failed" in result.output
    assert len(open_store(tmp_path / "s.zarr").video_ids) == 3


def test_importing_the_cli_loads_no_heavy_library():
    """`dvt --help` stays quick: cli.main imports none of torch, av, cv2, zarr until a command
    runs (they cost seconds on a busy machine)."""
    heavy = ("torch", "av", "cv2", "zarr")
    code = ("import sys, cli.main; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert loaded.stdout.strip() == "", loaded.stdout


THREADS_SCRIPT = """
import sys, cv2, torch
import dvt_prep.flow_torch as flow_torch
from cli.main import main
seen, run_flow = [], flow_torch.tvl1_flow_torch
def recording(*args, **kwargs):  # the threads torch and OpenCV compute on, inside the run
    seen.append((torch.get_num_threads(), cv2.getNumThreads()))
    return run_flow(*args, **kwargs)
flow_torch.tvl1_flow_torch = recording
main(sys.argv[1:], standalone_mode=False)
print("threads", sorted(set(seen)))
"""


@pytest.mark.parametrize("extra, expected", [((), "[(1, 1)]"), (("--threads", "2"), "[(2, 2)]")])
def test_prep_computes_on_one_thread_unless_asked(tmp_path, video_dir, extra, expected):
    result = subprocess.run(
        [sys.executable, "-c", THREADS_SCRIPT, "prep", str(video_dir / "landscape_sub.mp4"),
         "-o", str(tmp_path / "s.zarr"), "--cues", "tvl1", "--size", "64", "-q", *extra],
        capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
        timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"threads {expected}" in result.stdout, result.stdout


def test_inspect_no_videos_reads_only_the_index(tmp_path, video_dir, monkeypatch):
    store = tmp_path / "s.zarr"
    assert run_dvt("prep", video_dir, "-o", store, "--cues", "md", "--size", "64").exit_code == 0
    full = json.loads(run_dvt("inspect", store, "--json").output)

    def no_part_metadata(self, video_id):
        raise AssertionError(f"read the metadata of {video_id}")

    monkeypatch.setattr(Store, "meta", no_part_metadata)
    result = run_dvt("inspect", store, "--json", "--no-videos")
    assert result.exit_code == 0, result.output
    brief = json.loads(result.output)
    assert brief["videos"] == 3 and brief["frames"] == full["frames"] == 60
    assert brief["video_list"] == []


def test_a_closed_pipe_stops_the_output_quietly():
    """`dvt model-info ... | head -0`: the reader is gone before the first line; no error on
    stderr, the exit status a shell gives a tool stopped by its pipe."""
    from cli.main import CLOSED_PIPE_EXIT

    process = subprocess.Popen([sys.executable, "-m", "cli.main", "model-info", "dvt_tiny"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=os.path.dirname(os.path.dirname(__file__)))
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == CLOSED_PIPE_EXIT
    assert stderr == ""
