"""VideoClipDataset: exactly-once sharding, order and resume, geometry of augmentation, labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dvt_model.data import VideoClipDataset, collate, read_labels
from dvt_model.data.transforms import Box, crop_resize, transform_cue
from dvt_prep import StoreWriter, open_store
from dvt_prep.encode import EncodeSettings
from dvt_prep.errors import InputError
from dvt_prep.extract import PrepSettings, extract_video

NUM_VIDEOS = 7  # divisible by none of the world sizes 2, 3 nor the worker counts 3


def write_synthetic_store(path, *, num_videos: int = NUM_VIDEOS, num_frames: int = 10,
                          height: int = 64, width: int = 96) -> str:
    """A store of made-up arrays: rgb red = 255 * x / W (a ramp), md_valid = x / W at patch
    centres, md = (video index, frame index). Written with the real StoreWriter."""
    x = (np.arange(width) + 0.5) / width
    rgb = np.zeros((num_frames, height, width, 3), np.uint8)
    rgb[..., 0] = np.round(255 * x)
    px = (np.arange(width // 16) * 16 + 8) / width
    md_valid = np.broadcast_to(px, (num_frames, height // 16, width // 16)).astype(np.float32)
    with StoreWriter(path, rgb_codec="lossless") as writer:
        for v in range(num_videos):
            md = np.zeros((num_frames, height // 16, width // 16, 2), np.float32)
            md[..., 0] = v
            md[..., 1] = np.arange(num_frames)[:, None, None]
            arrays = {"rgb": rgb, "md": md, "md_valid": md_valid}
            meta = {"stored_size": [width, height], "arrays": list(arrays), "cues": ["rgb", "md"]}
            writer.add_video(f"video{v}", arrays, meta)
    return os.fspath(path)


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    return write_synthetic_store(tmp_path_factory.mktemp("ds") / "s.zarr")


def _keys(samples) -> list[tuple[str, int]]:
    return [(s["video_id"], s["view"]) for s in samples if not s["padded"]]


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 1, 3])
def test_exactly_once_across_ranks_and_workers(synthetic_store, mode, world_size, num_workers):
    per_rank, union = [], []
    for rank in range(world_size):
        ds = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32,
                              mode=mode, num_clips=2, num_crops=2, rank=rank,
                              world_size=world_size)
        ds.set_epoch(3)
        loader = DataLoader(ds, batch_size=None, num_workers=num_workers)
        samples = list(loader)
        per_rank.append(len(samples))
        assert len(samples) == len(ds)
        union += samples
    assert len(set(per_rank)) == 1
    views = 4 if mode == "test" else 1
    total = NUM_VIDEOS * views
    counts = Counter(_keys(union))
    if mode == "train":  # the tail that does not divide by the world size is dropped
        assert len(counts) == total - total % world_size and set(counts.values()) == {1}
    else:
        assert len(counts) == total and set(counts.values()) == {1}
        assert sum(s["padded"] for s in union) == per_rank[0] * world_size - total


def test_order_is_seeded_by_epoch_and_resume_gives_the_tail(synthetic_store):
    def run(epoch, seed=0):
        ds = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32,
                              seed=seed)
        ds.set_epoch(epoch)
        return ds, list(ds)

    _, first = run(1)
    _, again = run(1)
    _, other = run(2)
    assert _keys(first) == _keys(again)
    assert all(torch.equal(a["md"], b["md"]) for a, b in zip(first, again, strict=True))
    assert _keys(first) != _keys(other)
    ds, _ = run(1)
    ds.set_epoch(1)
    iterator = iter(ds)
    head = [next(iterator) for _ in range(3)]
    state = ds.state_dict()
    assert state["samples_seen"] == 3 and _keys(head) == _keys(first)[:3]
    resumed = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)  # the same epoch keeps the offset
    tail = list(resumed)
    assert _keys(tail) == _keys(first)[3:]
    assert all(torch.equal(a["md"], b["md"]) for a, b in zip(tail, first[3:], strict=True))


def test_dataloader_batches_come_in_rank_order_and_resume_with_workers(synthetic_store):
    def batches(num_workers, start=0, context=None):
        ds = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32,
                              batch_size=2)
        ds.load_state_dict({"epoch": 5, "samples_seen": start})
        loader = DataLoader(ds, batch_size=2, num_workers=num_workers, collate_fn=collate,
                            persistent_workers=num_workers > 0, multiprocessing_context=context)
        return [v for b in loader for v in b["video_id"]]

    plain = batches(0)
    assert batches(2) == plain
    assert batches(2, start=2) == plain[2:]
    assert batches(1, context="spawn") == plain


@pytest.mark.parametrize("num_workers", [0, 2])
def test_torchdata_stateful_dataloader_resumes_mid_epoch(synthetic_store, num_workers):
    """torchdata's StatefulDataLoader snapshots the dataset (in each worker) and, restored in
    a new loader, gives exactly the rest of the epoch."""
    stateful = pytest.importorskip("torchdata.stateful_dataloader")

    def loader():
        ds = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32,
                              batch_size=2, mode="test", num_clips=2, num_crops=1)
        ds.set_epoch(3)
        return stateful.StatefulDataLoader(ds, batch_size=2, num_workers=num_workers,
                                           collate_fn=collate)

    def keys(batch):
        return list(zip(batch["video_id"], batch["view"].tolist(), strict=True))

    whole = [k for b in loader() for k in keys(b)]
    first = loader()
    iterator = iter(first)
    head = [k for _ in range(3) for k in keys(next(iterator))]
    state = first.state_dict()
    del iterator
    resumed = loader()
    resumed.load_state_dict(state)
    tail = [k for b in resumed for k in keys(b)]
    assert head + tail == whole
    assert len(whole) == NUM_VIDEOS * 2


def test_persistent_workers_see_set_epoch(synthetic_store):
    ds = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32)
    loader = DataLoader(ds, batch_size=None, num_workers=1, persistent_workers=True)
    orders = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        orders.append([s["video_id"] for s in loader])
    reference = VideoClipDataset(synthetic_store, cues=("md",), num_frames=4, img_size=32)
    reference.set_epoch(1)
    assert orders[1] == [s["video_id"] for s in reference] != orders[0]


def test_crops_keep_patches_aligned_with_rgb(synthetic_store):
    ds = VideoClipDataset(synthetic_store, cues=("rgb", "md_valid"), num_frames=2,
                          img_size=32, scale=(0.3, 1.0))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    for epoch in range(4):
        ds.set_epoch(epoch)
        for sample in ds:
            red = (sample["rgb"] * std + mean)[..., 0]  # = x / W of each pixel's centre
            patch_red = red.reshape(2, 2, 16, 2, 16).mean((2, 4))
            # Away from the frame's edge both are exact resamplings of the same ramp.
            inner = (patch_red > 0.1) & (patch_red < 0.9)
            assert torch.allclose(patch_red[inner], sample["md_valid"][inner], atol=0.02)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("size", [(150.4, 97.3), (40.0, 31.5), (96.0, 64.0)])
def test_uint8_rgb_resampling_is_the_float_one_to_a_grey_level(flip, size):
    """resize_pixels (the dataset's rgb path) samples where crop_resize does, rounded."""
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 64, 96, 3),
                                                                  dtype=np.uint8))
    width, height = size
    for x0, y0 in [(0, 0), (96 - int(width), 64 - int(height)), (3, 1)]:
        box = Box(x0, y0, width, height, flip)
        if x0 + width > 96 or y0 + height > 64:
            continue
        fast = transform_cue("rgb", frames, box, (64, 96), 32)
        assert fast.dtype == torch.uint8 and fast.shape == (3, 32, 32, 3)
        exact = crop_resize(frames, box, (64, 96), 32)
        # away from the first row and column, where enlarging blends the pixel before the box
        inner = np.s_[:, 1:, 1:-1] if flip else np.s_[:, 1:, 1:]
        assert (fast.float() - exact)[inner].abs().max() <= 1.0


@pytest.fixture(scope="module")
def translating_store(tmp_path_factory, video_dir):
    path = tmp_path_factory.mktemp("tr") / "s.zarr"
    settings = PrepSettings(cues=("rgb", "md", "rgbd", "rgbr"), encode=EncodeSettings(size=128))
    arrays, meta = extract_video(str(video_dir / "landscape_sub.mp4"), settings)
    with StoreWriter(path) as writer:  # rgb as H.264, rgbr and rgbd computed when read
        writer.add_video("v", arrays, meta)
    store = open_store(path)
    return os.fspath(path), {name: store.read("v", name) for name in store.cues("v")}


def _inner_md(sample) -> torch.Tensor:
    md, valid = sample["md"], sample["md_valid"]
    return md[1:][valid[1:] > 0.99].reshape(-1, 2).median(0).values


def test_flip_and_resize_transform_displacement(translating_store):
    store, _ = translating_store  # content moves (+1.5, +0.5) px a frame: md is (-1.5, -0.5)
    common = dict(cues=("md", "md_valid"), num_frames=8)
    val = next(iter(VideoClipDataset(store, mode="val", img_size=128, **common)))
    assert torch.allclose(_inner_md(val), torch.tensor([-1.5, -0.5]), atol=0.15)
    double = next(iter(VideoClipDataset(store, mode="val", img_size=256, **common)))
    assert torch.allclose(_inner_md(double), torch.tensor([-3.0, -1.0]), atol=0.3)
    flips = {}
    ds = VideoClipDataset(store, mode="train", img_size=128, scale=(1.0, 1.0),
                          **common)  # a full-height crop: no resize, only the flip
    for epoch in range(8):
        ds.set_epoch(epoch)
        sample = next(iter(ds))
        dx = float(_inner_md(sample)[0])
        flips[dx > 0] = dx
    assert flips[True] == pytest.approx(1.5, abs=0.2)
    assert flips[False] == pytest.approx(-1.5, abs=0.2)


def test_stride_follows_the_motion_path_and_sums_differences(translating_store):
    store, arrays = translating_store
    ds = VideoClipDataset(store, mode="val", img_size=128, cues=("md", "md_valid", "rgbd"),
                          num_frames=4, frame_stride=3)
    sample = next(iter(ds))
    assert torch.allclose(_inner_md(sample), torch.tensor([-4.5, -1.5]), atol=0.4)
    from dvt_model.data import read_clip
    from dvt_prep import open_store
    frames = [sample["start"] + 3 * k for k in range(4)]
    rgbd = read_clip(open_store(store), "v", "rgbd", frames, 3, (128, 176))
    expected = arrays["rgbd"][frames[1] - 2: frames[1] + 1].sum(0)
    assert np.allclose(rgbd[1], expected, atol=1.0)


@pytest.mark.parametrize("options, match", [
    ({"cues": ("rgb", "flow")}, "unknown cue.*flow.*choose from"),
    ({"mode": "eval"}, "mode must be one of train, val, test"),
    ({"img_size": 100}, "img_size must be a multiple of 16"),
    ({"on_missing": "drop"}, "on_missing must be one of error, skip"),
])
def test_bad_options_raise_one_input_error_line(synthetic_store, options, match):
    with pytest.raises(InputError, match=match) as raised:
        VideoClipDataset(synthetic_store, **options)
    assert "\n" not in str(raised.value)


def test_repeated_frames_past_the_end_have_no_motion_and_full_validity(synthetic_store):
    from dvt_model.data import read_clip
    store = open_store(synthetic_store)
    frames = [6, 8, 9, 9, 9]  # stride 2, then past the end of a 10-frame video
    md = read_clip(store, "video0", "md", frames, 2, (64, 96))
    valid = read_clip(store, "video0", "md_valid", frames, 2, (64, 96))
    assert (md[3:] == 0).all() and (valid[3:] == 1).all()
    assert valid.dtype == np.float32 and md[2, ..., 1].max() == 9


def test_label_formats(tmp_path):
    (tmp_path / "plain.csv").write_text("video_id,label\na,dog\nb,cat\nc,dog\n")
    plain = read_labels(tmp_path / "plain.csv")
    assert plain.class_names == ("cat", "dog") and plain.by_video == {"a": 1, "b": 0, "c": 1}
    (tmp_path / "ints.csv").write_text("video_id,label\na,2\nb,0\n")
    assert read_labels(tmp_path / "ints.csv").by_video == {"a": 2, "b": 0}
    (tmp_path / "k400.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,--07WQ2iBlw,1,11,train\nzumba,-0aBc,300,310,train\n")
    kinetics = read_labels(tmp_path / "k400.csv")
    assert kinetics.by_video == {"--07WQ2iBlw_000001_000011": 0, "-0aBc_000300_000310": 1}
    ssv2 = tmp_path / "ssv2"
    ssv2.mkdir()
    (ssv2 / "something-something-v2-labels.json").write_text(json.dumps(
        {"Holding something": "0", "Pushing something from left to right": "1"}))
    (ssv2 / "something-something-v2-train.json").write_text(json.dumps([
        {"id": "78687", "template": "Pushing [something] from left to right",
         "label": "pushing a pen from left to right", "placeholders": ["a pen"]},
        {"id": "42326", "template": "Holding [something]", "label": "holding a cup",
         "placeholders": ["a cup"]}]))
    labels = read_labels(ssv2 / "something-something-v2-train.json")
    assert labels.by_video == {"78687": 1, "42326": 0} and labels.num_classes == 2
    (tmp_path / "odd.csv").write_text("name,class\na,b\n")
    with pytest.raises(InputError, match="unknown label CSV"):
        read_labels(tmp_path / "odd.csv")


def test_missing_labels_and_videos_are_reported(synthetic_store, tmp_path):
    rows = [f"video{v},{v % 2}" for v in range(1, NUM_VIDEOS)] + ["ghost,1"]
    (tmp_path / "l.csv").write_text("video_id,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="1 video\\(s\\) have no label.*'video0'.*'ghost'"):
        VideoClipDataset(synthetic_store, labels=tmp_path / "l.csv", cues=("md",))
    with pytest.warns(UserWarning, match="skipping"):
        ds = VideoClipDataset(synthetic_store, labels=tmp_path / "l.csv", cues=("md",),
                              on_missing="skip")
    assert len(ds.videos) == NUM_VIDEOS - 1
    with pytest.raises(InputError, match="has no 'tvl1'.*--cues tvl1"):
        VideoClipDataset(synthetic_store, cues=("tvl1",))


def test_torchrun_two_ranks_cover_the_epoch_once(synthetic_store, tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        "import json, os, sys, torch.distributed as dist\n"
        "from dvt_model.data import VideoClipDataset\n"
        "dist.init_process_group('gloo')\n"
        "ds = VideoClipDataset(sys.argv[1], cues=('md',), num_frames=4, img_size=32,\n"
        "                      mode='val')\n"
        "out = [[s['video_id'], s['padded']] for s in ds]\n"
        "with open(os.path.join(sys.argv[2], f'rank{dist.get_rank()}.json'), 'w') as f:\n"
        "    json.dump(out, f)\n"
        "dist.destroy_process_group()\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29531", str(script), synthetic_store, str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    real = [v for rank in ranks for v, padded in rank if not padded]
    assert sorted(real) == [f"video{v}" for v in range(NUM_VIDEOS)]
