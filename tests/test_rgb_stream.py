"""rgb kept as the canonical H.264 stream: bit-exact frames, rgbr and rgbd computed when read,
and stores that never mix settings."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest

from dvt_prep import StoreError, open_store
from dvt_prep.batch import prep_videos
from dvt_prep.decode import iter_av_frames
from dvt_prep.encode import EncodeSettings, encode_canonical
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import VideoInput
from dvt_prep.parallel import prep_parallel
from tests.conftest import run_dvt, shared_data

CLIPS = {"synthetic": None, "real_mp4": "vid_h264.mp4", "real_264": "vid_h264.264"}


def _source(name: str, video_dir) -> str:
    if CLIPS[name] is None:
        return str(video_dir / "landscape_odd.mp4")
    return str(shared_data("mv-extractor", CLIPS[name]))


@pytest.fixture(scope="module", params=list(CLIPS))
def prepped(request, video_dir, tmp_path_factory):
    """A clip prepped at grid 1 with rgb as H.264 (and mv, so that the test can apply the
    formulas itself): (store path, source path, settings)."""
    source = _source(request.param, video_dir)
    settings = PrepSettings(cues=("rgb", "mv", "md", "rgbr", "rgbd"), cue_grid=1,
                            encode=EncodeSettings(size=64, gop=8))
    path = str(tmp_path_factory.mktemp(request.param) / "s.zarr")
    report = prep_videos([VideoInput("v", source)], path, settings)
    assert report.done == ["v"], report.summary()
    return path, source, settings


def test_rgb_is_the_canonical_decode_bit_for_bit(prepped):
    path, source, settings = prepped
    stream = encode_canonical(source, settings.encode)
    fresh = np.stack([f.to_ndarray(format="rgb24")
                      for f in iter_av_frames(io.BytesIO(stream), format="h264")])
    store = open_store(path)
    assert store.meta("v")["computed"] == ["rgbr", "rgbd"]
    assert np.array_equal(store.read("v", "rgb"), fresh)
    count = len(fresh)
    for start, stop in [(0, 1), (7, 9), (8, 24), (count - 3, count), (5, 5)]:
        assert np.array_equal(store.read("v", "rgb", start, stop), fresh[start:stop])
    frames = [1, 8, 9, count - 1]  # a key frame, its neighbours, the last
    assert np.array_equal(store.read_frames("v", "rgb", frames), fresh[frames])


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """image (H, W, 3) sampled at (xs, ys), borders replicated, in float64."""
    height, width = image.shape[:2]
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]

    def at(y, x):
        return image[np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)].astype(np.float64)

    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


def test_rgbr_and_rgbd_equal_their_formulas_at_grid_1(prepped):
    """docs/design.md §3 at g = 1: rgbd = rgb[t] - rgb[t-1]; rgbr = rgb[t] minus rgb[t-1]
    sampled bilinearly at p + mv[t](p) (mv nearest-cell upsampled from its 4x4 grid)."""
    store = open_store(prepped[0])
    rgb, mv = store.read("v", "rgb").astype(np.float64), store.read("v", "mv")
    rgbr, rgbd = store.read("v", "rgbr"), store.read("v", "rgbd")
    height, width = rgb.shape[1:3]
    assert not rgbr[0].any() and not rgbd[0].any()
    assert np.array_equal(rgbd[1:], (rgb[1:] - rgb[:-1]).astype(np.float32))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for t in range(1, len(rgb), 3):
        field = np.repeat(np.repeat(mv[t], 4, 0), 4, 1)[:height, :width]
        prediction = _bilinear(rgb[t - 1], xs + field[..., 0], ys + field[..., 1])
        assert np.abs(rgbr[t] - (rgb[t] - prediction)).max() < 1e-3, t


def test_computed_cues_near_a_box_equal_the_whole_frame(prepped):
    store = open_store(prepped[0])
    whole = store.read("v", "rgbr", 3, 12)
    boxed = store.read("v", "rgbr", 3, 12, box=(10, 30, 5, 41))
    assert np.array_equal(boxed[:, 9:31, 4:42], whole[:, 9:31, 4:42])


def _snapshot(path) -> dict[str, str]:
    """Every file of a store (or folder) and the hash of its bytes."""
    out = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, "rb") as handle:
                out[os.path.relpath(full, path)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def test_other_settings_stop_before_any_work(tmp_path, video_dir):
    store = tmp_path / "s.zarr"
    video = video_dir / "landscape_sub.mp4"
    assert run_dvt("prep", video, "-o", store, "--cues", "md,rgb", "--size", "64",
                   "-q").exit_code == 0
    before = _snapshot(store)
    for extra, named in [(["--size", "128"], "size 64 (this run: 128)"),
                         (["--cue-grid", "8"], "cue_grid 4 (this run: 8)"),
                         (["--no-reencode"], "encode_mode 'canonical' (this run: 'source')"),
                         (["--rgb-codec", "jpeg"], "rgb_codec 'h264' (this run: 'jpeg')"),
                         (["--gop", "8"], "gop 16 (this run: 8)")]:
        args = ["--size", "64", *extra] if "--size" not in extra else extra
        result = run_dvt("prep", video_dir, "-o", store, "--cues", "md,rgb", *args)
        assert result.exit_code != 0, extra
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], lines
        assert "--overwrite" in lines[0] and "new store" in lines[0]
        assert _snapshot(store) == before, extra
    # the same settings: more cues and more videos are fine
    more = run_dvt("prep", video_dir, "-o", store, "--cues", "md,rgb,rgbd", "--size", "64", "-q")
    assert more.exit_code == 0 and "3 done" in more.output, more.output
    redone = run_dvt("prep", video, "-o", store, "--size", "128", "--overwrite", "-q")
    assert redone.exit_code == 0, redone.output
    assert open_store(store).video_ids == ["landscape_sub"]
    assert open_store(store).meta("landscape_sub")["stored_size"] == [176, 128]


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_the_parallel_paths_check_the_same(tmp_path, video_dir, executor):
    if executor == "dask":
        pytest.importorskip("dask.distributed")
    store = str(tmp_path / "s.zarr")
    videos = [VideoInput("v", str(video_dir / "landscape_sub.mp4"))]
    prep_videos(videos, store, PrepSettings(cues=("md",), encode=EncodeSettings(size=64)))
    before = _snapshot(store)
    with pytest.raises(StoreError, match="cue_grid 4 \\(this run: 2\\)"):
        prep_parallel(videos * 2, store, PrepSettings(cues=("md",), cue_grid=2,
                                                      encode=EncodeSettings(size=64)),
                      workers=2, executor=executor)
    assert _snapshot(store) == before


def test_a_store_of_the_older_layout_reads_and_says_how_to_convert(tmp_path, video_dir):
    """Stores written before this layout: rgb as JPEG, rgbr stored, no settings record."""
    from dvt_prep.store_writer import StoreWriter

    settings = PrepSettings(cues=("rgb", "md", "rgbr"), rgb_codec="jpeg",
                            encode=EncodeSettings(size=64))
    from dvt_prep.extract import extract_video

    arrays, meta = extract_video(str(video_dir / "landscape_sub.mp4"), settings)
    meta = {k: v for k, v in meta.items() if k not in ("computed", "source_bytes")}
    path = tmp_path / "old.zarr"
    with StoreWriter(path, rgb_codec="jpeg") as writer:  # no settings record, as before
        writer.add_video("v", arrays, meta)
    store = open_store(path)
    assert store.read("v", "rgbr").shape == arrays["rgbr"].shape
    text = run_dvt("inspect", path).output
    assert "prep the same videos into a new store" in text and "store/source" in text
    # a later run is checked against what the videos say
    result = run_dvt("prep", video_dir / "landscape_odd.mp4", "-o", path, "--cues", "md",
                     "--size", "64")
    assert result.exit_code != 0 and "rgb_codec 'jpeg' (this run: 'h264')" in result.output


_PARENT_STORES: list = []


def _free_and_read(path: str) -> None:
    import gc

    _PARENT_STORES.clear()  # the parent's store, decoder and converter, freed in the child
    gc.collect()
    assert open_store(path).read("v", "rgb", 0, 3).shape[0] == 3


def test_a_forked_child_frees_the_parents_decoder_and_reads(prepped):
    """A DataLoader worker forked after the main process read from a store."""
    import multiprocessing

    store = open_store(prepped[0])
    store.read("v", "rgbr", 5, 9)  # a decoder and an RGB converter now exist
    _PARENT_STORES.append(store)
    child = multiprocessing.get_context("fork").Process(target=_free_and_read,
                                                        args=(prepped[0],))
    child.start()
    child.join(120)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0



def _collect_garbage(_worker_id: int) -> None:
    """What every worker does sooner or later: a full collection, which frees what the parent
    left in reference cycles (here the prep's PyAV frames whose side data was read)."""
    import gc

    gc.collect()


def test_dataloader_workers_forked_after_a_prep_and_reads_give_the_same_clips(video_dir,
                                                                             tmp_path):
    """Two forked DataLoader workers, started from a process that has just prepped a store (a
    notebook, the test suite) and read from it, read the clips that process reads."""
    import torch
    from torch.utils.data import DataLoader

    from dvt_model.data import VideoClipDataset

    settings = PrepSettings(cues=("rgb", "md", "rgbr"), encode=EncodeSettings(size=64, gop=8))
    path = str(tmp_path / "s.zarr")
    assert prep_videos([VideoInput("v", str(video_dir / "landscape_odd.mp4"))], path,
                       settings).done == ["v"]
    dataset = VideoClipDataset(path, cues=("rgb", "md", "rgbr"), num_frames=4, img_size=32,
                               mode="test", num_clips=2, num_crops=2)

    def clips(num_workers: int) -> dict[int, dict]:
        loader = DataLoader(dataset, batch_size=None, num_workers=num_workers,
                            multiprocessing_context="fork" if num_workers else None,
                            timeout=120 if num_workers else 0,  # a hung worker fails
                            worker_init_fn=_collect_garbage)
        return {sample["view"]: sample for sample in loader}

    in_process = clips(0)
    forked = clips(2)
    assert sorted(forked) == sorted(in_process) == [0, 1, 2, 3]
    for view, sample in in_process.items():
        for cue in ("rgb", "md", "rgbr"):
            assert torch.equal(forked[view][cue], sample[cue]), (view, cue)


def test_inspect_shows_bytes_per_frame_per_array_and_the_store_source_ratio(tmp_path,
                                                                           video_dir):
    video, path = video_dir / "landscape_odd.mp4", tmp_path / "s.zarr"
    assert run_dvt("prep", video, "-o", path, "--cues", "rgb,md,rgbr,rgbd", "-q").exit_code == 0
    info = json.loads(run_dvt("inspect", path, "--json").output)
    frames, nbytes = info["frames"], info["bytes"]
    assert set(nbytes) == {"rgb", "md", "md_valid"} and info["computed"] == ["rgbd", "rgbr"]
    assert info["bytes_per_frame"] == {k: round(v / frames, 1) for k, v in nbytes.items()}
    ratio = sum(nbytes.values()) / os.path.getsize(video)
    assert info["store_to_source"] == round(ratio, 3)
    lines = run_dvt("inspect", path).output.splitlines()
    for name, size in nbytes.items():
        row = next(line.split() for line in lines if line.split()[:1] == [name])
        assert f"{round(size / frames):,}" == row[3] and row[4] == "B/frame", row
    for name in ("rgbr", "rgbd"):
        assert any(line.split()[:1] == [name] and "computed at read time" in line
                   for line in lines)
    assert any(f"store/source {ratio:.2f}" in line for line in lines), lines
