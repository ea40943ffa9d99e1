"""The motion suite's generators make the motion they claim (seen through md and tvl1), the flip
label map keeps labels true, and the benchmark is deterministic for a seed."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dvt_model.data import VideoClipDataset
from dvt_model.data.flip_map import FlipLabelMap
from dvt_prep import open_store
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import collect_inputs
from dvt_prep.motion_suite import COLOURS, GENERATORS, generate_video, write_split
from dvt_prep.parallel import prep_parallel


def prep_folder(folder, store, cues=("rgb", "md", "tvl1")) -> None:
    settings = PrepSettings(cues=cues, encode=EncodeSettings(size=64))
    report = prep_parallel(collect_inputs([str(folder)]), str(store), settings, workers=1)
    assert not report.failed, report.summary()


@pytest.fixture(scope="module")
def suite_store(tmp_path_factory):
    """One video per class of every motion generator, prepped with md and tvl1."""
    root = tmp_path_factory.mktemp("suite")
    labels = {}
    for name in GENERATORS:
        if GENERATORS[name].motion:
            write_split(str(root / name), name, split="train", videos_per_class=1, seed=3)
            with open(root / name / "train.csv", encoding="utf-8") as handle:
                for row in list(csv.reader(handle))[1:]:
                    labels[f"{name}/{row[0]}"] = row[1]
    prep_folder(root, root / "suite.zarr")
    return open_store(str(root / "suite.zarr")), labels


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the cross product of (..., 2) vectors: > 0 turns clockwise on screen (y down)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def velocities(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """On-screen motion (the negated backward displacement) of a (T, h, w, 2) field from frame
    1 on, and the cell centres relative to the frame centre, (h, w, 2) in cells."""
    height, width = field.shape[1:3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    offsets = np.stack([xs - (width - 1) / 2, ys - (height - 1) / 2], -1)
    return -field[1:].astype(np.float64), offsets


def mean_moving(velocity: np.ndarray) -> np.ndarray:
    """(T, 2): the mean velocity of each frame's moving cells (more than 0.3 px)."""
    out = []
    for frame in velocity:
        moving = np.linalg.norm(frame, axis=-1) > 0.3
        out.append(frame[moving].mean(0) if moving.any() else np.zeros(2))
    return np.array(out)


def check_motion(label: str, field: np.ndarray) -> None:
    velocity, offsets = velocities(field)
    per_frame = mean_moving(velocity)
    x, y = per_frame[:, 0].mean(), per_frame[:, 1].mean()
    name = label.removeprefix("pan_")
    if name in ("right", "left", "up", "down"):
        along = {"right": x, "left": -x, "down": y, "up": -y}[name]
        across = y if name in ("right", "left") else x
        assert along > 0.3 and abs(across) < along / 2, (label, x, y)
    elif "_then_" in name:
        half = len(per_frame) // 2
        first = per_frame[: half - 1].mean(0)
        second = per_frame[half + 1:].mean(0)
        sign = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
        expected = np.array(sign[name.split("_then_")[0]], float)
        assert first @ expected > 0.3 and second @ expected < -0.3, (label, first, second)
    elif name.startswith("rotate"):
        spin = cross(offsets, velocity).mean()  # angular momentum about the centre
        assert (spin > 0) == (name == "rotate_cw"), (label, spin)
    elif name.startswith("zoom"):
        spread = (offsets * velocity).sum(-1).mean()  # > 0: content moves outward
        assert (spread > 0) == (name == "zoom_in"), (label, spread)
    else:
        raise AssertionError(f"no check for {label}")


@pytest.mark.parametrize("cue", ["md", "tvl1"])
def test_generators_make_their_motion(suite_store, cue):
    store, labels = suite_store
    assert len(labels) == 4 * sum(g.motion for g in GENERATORS.values())
    for video_id, label in labels.items():
        check_motion(label, store.read(video_id, cue))


def test_appearance_classes_are_colours():
    for index, name in enumerate(COLOURS):
        frames = generate_video("appearance", name, seed=index).astype(np.float64)
        saturation = frames.max(-1) - frames.min(-1)
        vivid = frames[saturation > np.quantile(saturation, 0.97)].mean(0)
        distances = {c: np.linalg.norm(vivid - np.array(rgb)) for c, rgb in COLOURS.items()}
        assert min(distances, key=distances.get) == name


def test_generators_are_deterministic():
    for name, generator in GENERATORS.items():
        label = generator.classes[0]
        np.testing.assert_array_equal(generate_video(name, label, seed=5),
                                      generate_video(name, label, seed=5))
        assert not np.array_equal(generate_video(name, label, seed=5),
                                  generate_video(name, label, seed=6))


def test_flip_label_map():
    names = ("right", "left", "orbit_cw", "orbit_ccw", "right_then_left", "zoom_in",
             "Pushing something from left to right", "Pushing something from right to left",
             "rotate counter-clockwise", "Rotate_Clockwise", "spin anticlockwise", "up")
    flips = FlipLabelMap.from_classes(names)
    partner = {names[i]: (None if p is None else names[p]) for i, p in enumerate(flips.partner)}
    assert partner["right"] == "left" and partner["left"] == "right"
    assert partner["orbit_cw"] == "orbit_ccw" and partner["orbit_ccw"] == "orbit_cw"
    assert partner["Pushing something from left to right"] == \
        "Pushing something from right to left"
    assert partner["rotate counter-clockwise"] == "Rotate_Clockwise"
    assert partner["right_then_left"] is None  # left_then_right is not a class
    assert partner["spin anticlockwise"] is None
    assert partner["zoom_in"] == "zoom_in" and partner["up"] == "up"  # a mirror keeps them
    assert set(flips.unpaired) == {"right_then_left", "spin anticlockwise"}
    assert "never mirrored" in flips.summary() and "\n" not in flips.summary()
    assert FlipLabelMap.from_classes(("abseiling", "archery")).summary() == ""


@pytest.fixture(scope="module")
def direction_store(tmp_path_factory):
    """Two videos each of right, left (mirror partners) and right_then_left (no partner)."""
    root = tmp_path_factory.mktemp("directions")
    videos = root / "videos"
    videos.mkdir()
    rows = []
    for generator, keep in (("small_object", ("right", "left")),
                            ("back_and_forth", ("right_then_left",))):
        write_split(str(root / generator), generator, split="train", videos_per_class=2, seed=1)
        for label in keep:
            for number in range(2):
                source = root / generator / "train" / f"{label}_{number:03d}.mp4"
                source.rename(videos / f"{label}_{number}.mp4")
                rows.append(f"{label}_{number},{label}")
    (root / "labels.csv").write_text("video_id,label\n" + "\n".join(rows) + "\n")
    prep_folder(videos, root / "store.zarr", cues=("rgb", "md"))
    return str(root / "store.zarr"), str(root / "labels.csv")


@pytest.mark.parametrize("flip", [None, True, False])
def test_flips_never_corrupt_labels(direction_store, flip):
    store, labels = direction_store
    dataset = VideoClipDataset(store, labels=labels, cues=("md",), num_frames=16, img_size=64,
                               mode="train", flip=flip, scale=(0.9, 1.0))
    names = dataset.class_names
    mirrored_partners = mirrored_unpaired = 0
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for sample in dataset:
            label = names[sample["label"]]
            made_as = sample["video_id"].rsplit("_", 1)[0]
            x = -sample["md"][1:, ..., 0].numpy()  # on-screen horizontal motion, frames 1..15
            if made_as == "right_then_left":
                assert label == made_as
                mirrored_unpaired += int(x[:6].mean() < 0)  # before the turn at frame 8
            else:
                assert (x.mean() > 0) == (label == "right"), (label, made_as, x.mean())
                mirrored_partners += int(label != made_as)
    if flip is False:
        assert mirrored_partners == mirrored_unpaired == 0
    else:
        assert mirrored_partners > 0  # mirrored partner clips carry the partner's label
        assert (mirrored_unpaired > 0) == (flip is True)  # the unpaired only when forced
