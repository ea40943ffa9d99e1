"""The store: quantisation bounds of what it returns, atomic parts, ranges, newest part wins."""

from __future__ import annotations

import numpy as np
import pytest

from dvt_prep import StoreError, StoreWriter, open_store
from dvt_prep.encode import EncodeSettings
from dvt_prep.errors import InputError
from dvt_prep.extract import PrepSettings, extract_video
from dvt_prep.store_layout import PARTS

ALL_CUES = ("rgb", "mv", "md", "rgbr", "rgbd", "tvl1")


@pytest.fixture(scope="module")
def extracted(video_dir):
    settings = PrepSettings(cues=ALL_CUES, cue_grid=1, encode=EncodeSettings(size=128),
                            rgb_codec="lossless")  # every array as numpy, for any writer codec
    return extract_video(str(video_dir / "landscape_sub.mp4"), settings)


@pytest.mark.parametrize("build, message", [
    (lambda: EncodeSettings(size=100), "multiple of 16"),
    (lambda: EncodeSettings(gop=0), "gop"),
    (lambda: PrepSettings(cues=("flow",)), "unknown cue"),
    (lambda: PrepSettings(threads=0), "threads"),
    (lambda: PrepSettings(rgb_codec="h264", reencode=False), "--no-reencode"),
    (lambda: PrepSettings(cues=("tvl1",), flow_device="tpu"), "not a device name"),
])
def test_bad_settings_raise_one_input_error_line(build, message):
    """Settings validate in one way: InputError, one line (also a ValueError for callers)."""
    with pytest.raises(InputError, match=message) as raised:
        build()
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.mark.parametrize("rgb_codec", ["jpeg", "lossless"])
def test_quantisation_bounds_of_what_the_store_returns(tmp_path, extracted, rgb_codec):
    arrays, meta = extracted
    with StoreWriter(tmp_path / "s.zarr", rgb_codec=rgb_codec) as writer:
        writer.add_video("v", arrays, meta)
    store = open_store(tmp_path / "s.zarr")
    read = {name: store.read("v", name) for name in arrays}
    for name, array in arrays.items():
        assert read[name].shape == array.shape, name
        assert read[name].dtype == {"rgb": np.uint8, "mv_valid": np.bool_}.get(name, np.float32)
    assert np.abs(read["tvl1"] - arrays["tvl1"]).max() <= 0.1
    for name in ("rgbr", "rgbd"):
        assert np.abs(read[name] - arrays[name]).max() <= 1.0, name
    assert np.array_equal(read["rgbd"], arrays["rgbd"])  # integers at grid 1: exact
    for name in ("mv", "mv_valid", "md", "md_valid"):
        assert np.array_equal(read[name], arrays[name]), name
    if rgb_codec == "lossless":
        assert np.array_equal(read["rgb"], arrays["rgb"])
    else:
        assert min(_psnr(r, a) for r, a in zip(read["rgb"], arrays["rgb"], strict=True)) >= 40


def test_frame_ranges_and_several_videos_in_one_part(tmp_path, extracted):
    arrays, meta = extracted
    shifted = {k: (v[::-1].copy() if k != "rgb" else v) for k, v in arrays.items()}
    with StoreWriter(tmp_path / "s.zarr", rgb_codec="lossless") as writer:
        writer.add_video("a/first", arrays, meta)
        writer.add_video("b/second", shifted, meta)
    store = open_store(tmp_path / "s.zarr")
    assert store.video_ids == ["a/first", "b/second"]
    assert store.num_parts == 1
    assert np.array_equal(store.read("a/first", "rgb", start=8, stop=12), arrays["rgb"][8:12])
    assert np.array_equal(store.read("b/second", "md", start=3), shifted["md"][3:])
    assert store.read("a/first", "md", start=5, stop=5).shape[0] == 0
    assert store.meta("a/first")["frame_types"] == meta["frame_types"]
    assert "offset" not in store.meta("b/second")
    with pytest.raises(StoreError, match="no video"):
        store.read("missing", "md")


def test_uncommitted_part_is_invisible_and_newest_part_wins(tmp_path, extracted):
    arrays, meta = extracted
    path = tmp_path / "s.zarr"
    with StoreWriter(path) as writer:
        writer.add_video("v", {"md": arrays["md"], "md_valid": arrays["md_valid"]}, meta)
    before = open_store(path).read("v", "md")
    # A writer killed between its arrays and its commit leaves a part without `videos`.
    import zarr

    root = zarr.open_group(str(path), mode="a")
    orphan = root[PARTS].create_group("99999999999999999999-crashed")
    orphan.create_array("md", shape=(4, 2, 2, 2), dtype="float32")[...] = 7.0
    store = open_store(path)
    assert store.video_ids == ["v"] and store.uncommitted_parts == 1
    assert np.array_equal(store.read("v", "md"), before)
    # A later part with the same video replaces it; a failure record does not hide a success.
    with StoreWriter(path) as writer:
        writer.add_failure("v", "it failed once")
        writer.add_failure("w", "broken file")
    with StoreWriter(path) as writer:
        writer.add_video("v", {"md": arrays["md"] * 0, "md_valid": arrays["md_valid"]}, meta)
    store = open_store(path)
    assert not store.read("v", "md").any()
    assert store.failures == {"w": "broken file"}


def test_open_store_errors(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        open_store(tmp_path / "missing.zarr")
    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(StoreError, match="not a dvt store"):
        open_store(tmp_path / "other.zarr")
    with pytest.raises(ValueError):
        open_store(tmp_path / "other.zarr", mode="w")


def test_consolidated_index_is_used_and_never_stale(tmp_path):
    import json

    from dvt_prep.store_layout import INDEX, consolidate
    arrays = {"md": np.zeros((4, 2, 2, 2), np.float32), "md_valid": np.ones((4, 2, 2), np.float32)}
    path = tmp_path / "s.zarr"
    with StoreWriter(path, part_frames=4) as writer:  # one part per video
        for i in range(5):
            writer.add_video(f"v{i}", {k: v + i for k, v in arrays.items()},
                             {"arrays": list(arrays), "stored_size": [32, 32], "note": i})
        writer.add_failure("bad", "bad: not a video")
    assert consolidate(path) == 6
    index = json.loads((path / INDEX).read_text())
    assert len(index["parts"]) == 6
    with StoreWriter(path) as writer:  # a part after the index, and v0 again (newest wins)
        writer.add_video("v0", {k: v + 9 for k, v in arrays.items()},
                         {"arrays": list(arrays), "stored_size": [32, 32], "note": 9})
    store = open_store(path)
    assert store.video_ids == [f"v{i}" for i in range(5)] and store.failures == {"bad": "bad: not a video"}
    assert store.meta("v3")["note"] == 3 and store.summary("v3")["num_frames"] == 4
    assert store.meta("v0")["note"] == 9 and store.read("v0", "md")[0, 0, 0, 0] == 9
    assert np.array_equal(store.read("v2", "md"), arrays["md"] + 2)
    (path / INDEX).write_text("{not json")  # a damaged index: the parts are read instead
    assert open_store(path).meta("v4")["note"] == 4


@pytest.mark.parametrize("rgb_codec", ["jpeg", "lossless"])
def test_direct_shard_reads_equal_zarr_reads(tmp_path, extracted, rgb_codec):
    """Store.read takes each chunk straight from the shard file; zarr, opened on its own, must
    agree on every array, for every range (chunk edges, the part's second video, empty,
    whole videos)."""
    import zarr

    from dvt_prep.shard_read import ShardFile
    from dvt_prep.store_format import from_disk

    arrays, meta = extracted
    with StoreWriter(tmp_path / "s.zarr", rgb_codec=rgb_codec) as writer:
        writer.add_video("a", arrays, meta)
        writer.add_video("b", {k: v[:13] for k, v in arrays.items()}, meta | {"num_frames": 13})
    store = open_store(tmp_path / "s.zarr")
    parts = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")[PARTS]
    (part,) = parts.group_keys()  # one writer: one part, its videos one after the other
    for name in arrays:
        array = parts[part][name]
        assert ShardFile.open(array, str(tmp_path / "s.zarr" / PARTS / part / name)) is not None
        length = array.shape[0] - 13
        for video, first, count in (("a", 0, length), ("b", length, 13)):
            for start, stop in [(0, count), (0, 1), (15, 17), (16, count), (count - 13, count),
                                (5, 5), (count - 1, count)]:
                start, stop = min(start, count), min(stop, count)
                direct = store.read(video, name, start, stop)
                expected = from_disk(name, array[first + start: first + stop])
                assert direct.dtype == expected.dtype and np.array_equal(direct, expected), \
                    (video, name, start, stop)
                assert direct.flags.writeable
