"""kill -9 at several points of a 2-worker run, then a rerun: the store equals a clean run
(at the defaults: rgb kept as the H.264 stream, rgbr computed from it when read)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dvt_prep import open_store
from dvt_prep.synthetic import write_translating_video

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--cues", "rgb,md,rgbr", "--size", "64", "-q"]


@pytest.fixture(scope="module")
def many_videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("many")
    for index in range(10):
        subfolder = folder / f"c{index % 3}"
        subfolder.mkdir(exist_ok=True)
        write_translating_video(subfolder / f"v{index:02d}.mp4", height=64, width=96,
                                num_frames=24, dx=0.5 * (index % 4), dy=0.25 * (index % 3),
                                seed=index)
    return folder


def _prep(videos: Path, store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "prep", str(videos), "-o",
                             str(store), *ARGS, *extra], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _content(path: Path) -> dict:
    store = open_store(path)
    return {(v, n): store.read(v, n) for v in store.video_ids for n in store.cues(v)}


def test_kill_9_then_resume_equals_clean_run(many_videos, tmp_path):
    clean = tmp_path / "clean.zarr"
    assert _prep(many_videos, clean).wait(timeout=300) == 0
    expected = _content(clean)
    assert len({v for v, _ in expected}) == 10
    for delay in (0.5, 0.8, 1.1, 1.5):
        store = tmp_path / f"killed_{delay}.zarr"
        process = _prep(many_videos, store, "--workers", "2")
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if store.exists():  # whatever is there is readable, every video whole
            partial = _content(store)
            print(f"killed after {delay} s: {len({v for v, _ in partial})} of 10 videos")
            for key, array in partial.items():
                assert np.array_equal(array, expected[key]), key
        assert _prep(many_videos, store, "--workers", "2").wait(timeout=300) == 0
        resumed = _content(store)
        assert resumed.keys() == expected.keys()
        for key, array in expected.items():
            assert np.array_equal(resumed[key], array), (delay, key)
