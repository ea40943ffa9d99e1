"""2 pool workers and a 2-worker Dask LocalCluster give the same store content as 1 worker."""

from __future__ import annotations

import numpy as np
import pytest

from dvt_prep import open_store
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import collect_inputs
from dvt_prep.parallel import prep_parallel

SETTINGS = PrepSettings(cues=("rgb", "md", "rgbd"), encode=EncodeSettings(size=128))


def _content(path) -> dict:
    store = open_store(path)
    return {(v, name): store.read(v, name) for v in store.video_ids for name in store.cues(v)}


@pytest.fixture(scope="module")
def sequential(video_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("seq") / "s.zarr"
    report = prep_parallel(collect_inputs([str(video_dir)]), str(path), SETTINGS, workers=1)
    assert len(report.done) == 3
    return _content(path)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_two_workers_equal_one(video_dir, tmp_path, sequential, executor):
    if executor == "dask":
        pytest.importorskip("dask.distributed")
    path = tmp_path / "s.zarr"
    seen = []
    report = prep_parallel(collect_inputs([str(video_dir)]), str(path), SETTINGS, workers=2,
                           executor=executor, chunk_size=1,
                           on_video=lambda video_id, status, frames: seen.append(video_id))
    assert sorted(report.done) == sorted(seen) and len(seen) == 3 and not report.failed
    content = _content(path)
    assert content.keys() == sequential.keys()
    for key, array in sequential.items():
        assert np.array_equal(content[key], array), key
    assert open_store(path).num_parts == 3  # one part per chunk: writers never share one


def test_four_workers_over_200_tiny_videos_lose_none(tmp_path):
    from dvt_prep.synthetic import write_video

    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(200):
        frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
        write_video(folder / f"t{index:03d}.mp4", frames, crf=30)
    settings = PrepSettings(cues=("rgb", "md"), encode=EncodeSettings(size=32))
    report = prep_parallel(collect_inputs([str(folder)]), str(tmp_path / "s.zarr"), settings,
                           workers=4, chunk_size=8)
    assert len(report.done) == 200 and not report.failed
    store = open_store(tmp_path / "s.zarr")
    assert len(store.video_ids) == 200
    assert all(store.read(v, "rgb").shape == (3, 32, 32, 3) for v in store.video_ids)
