"""Cues of generated videos with known motion against the truth (docs/design.md §§1 to 3)."""

from __future__ import annotations

import numpy as np
import pytest

from dvt_prep.cues import cell_mean
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings, extract_video
from dvt_prep.synthetic import write_translating_video
from tests.conftest import VIDEO_SPECS

MOTIONS = {name: (spec["dx"], spec["dy"]) for name, spec in VIDEO_SPECS.items()}


def _true_backward(meta: dict, name: str) -> np.ndarray:
    """The true backward displacement in stored pixels: minus the motion, scaled by the resize."""
    dx, dy = MOTIONS[name]
    (orig_w, orig_h), (stored_w, stored_h) = meta["original_size"], meta["stored_size"]
    return np.array([-dx * stored_w / orig_w, -dy * stored_h / orig_h], np.float32)


@pytest.fixture(scope="module")
def extracted(video_dir):
    settings = PrepSettings(cues=("rgb", "mv", "md", "rgbr", "rgbd", "tvl1"), cue_grid=4,
                            encode=EncodeSettings(size=128), rgb_codec="lossless")
    return {name: extract_video(str(video_dir / f"{name}.mp4"), settings) for name in MOTIONS}


@pytest.mark.parametrize("name", list(MOTIONS))
def test_md_matches_true_displacement(extracted, name):
    arrays, meta = extracted[name]
    truth = _true_backward(meta, name)
    md, md_valid = arrays["md"], arrays["md_valid"]
    inter = [t for t, kind in enumerate(meta["frame_types"]) if kind == "P" and t > 0]
    interior = md[inter, 1:-1, 1:-1]
    full = md_valid[inter, 1:-1, 1:-1] > 0.99
    assert full.mean() > 0.8
    error = np.linalg.norm(interior[full] - truth, axis=-1)
    assert np.median(error) <= 0.15, (np.median(error), truth)
    assert np.percentile(error, 90) <= 0.3


@pytest.mark.parametrize("name", list(MOTIONS))
def test_tvl1_matches_true_displacement(extracted, name):
    arrays, meta = extracted[name]
    truth = _true_backward(meta, name)
    interior = arrays["tvl1"][1:, 2:-2, 2:-2]
    error = np.linalg.norm(interior - truth, axis=-1)
    assert np.median(error) <= 0.15, (np.median(error), truth)


@pytest.mark.parametrize("name", list(MOTIONS))
def test_validity_and_frame_zero(extracted, name):
    arrays, meta = extracted[name]
    kinds = meta["frame_types"]
    assert kinds[0] == "I" and set(kinds) <= {"I", "P"}
    assert all(kinds[t] == "I" for t in range(0, len(kinds), 16))
    for t, kind in enumerate(kinds):
        if t == 0 or kind == "I":
            assert arrays["md_valid"][t].max() == 0 and not arrays["mv_valid"][t].any()
            assert not arrays["md"][t].any() and not arrays["mv"][t].any()
    for cue in ("rgbr", "rgbd", "tvl1", "mv", "md"):
        assert not arrays[cue][0].any(), cue


def test_rgbd_is_the_cell_mean_of_the_frame_difference(extracted):
    arrays, _ = extracted["landscape_sub"]
    rgb = arrays["rgb"].astype(np.float32)
    for t in (1, 5, 17):
        assert np.allclose(arrays["rgbd"][t], cell_mean(rgb[t] - rgb[t - 1], 4), atol=1e-3)


@pytest.mark.parametrize("name", list(MOTIONS))
def test_residual_is_much_smaller_than_difference_at_grid_1(video_dir, name):
    settings = PrepSettings(cues=("rgb", "rgbr", "rgbd"), cue_grid=1, rgb_codec="lossless",
                            encode=EncodeSettings(size=128))
    arrays, _ = extract_video(str(video_dir / f"{name}.mp4"), settings)
    rgb = arrays["rgb"].astype(np.float32)
    assert np.array_equal(arrays["rgbd"][1:], rgb[1:] - rgb[:-1])
    residual = np.abs(arrays["rgbr"][1:]).mean()
    difference = np.abs(arrays["rgbd"][1:]).mean()
    assert residual <= 0.5 * difference, (residual, difference)


def test_no_reencode_keeps_source_and_marks_mode(tmp_path):
    path = write_translating_video(tmp_path / "b.mp4", height=88, width=120, num_frames=16,
                                   dx=1.0, dy=0.0, options={"x264-params": "bframes=2:b-pyramid=0"})
    arrays, meta = extract_video(str(path), PrepSettings(cues=("md",), reencode=False))
    assert meta["encode"]["mode"] == "source"
    assert "B" in meta["frame_types"]
    assert meta["stored_size"] == [120, 88]
    assert arrays["md"].shape == (16, 6, 8, 2)  # ceil(88 / 16), ceil(120 / 16)
    b_frames = [t for t, k in enumerate(meta["frame_types"]) if k == "B"]
    full = arrays["md_valid"][b_frames, 1:-1, 1:-1] > 0.99
    md = arrays["md"][b_frames, 1:-1, 1:-1][full]
    assert len(md) > 0
    assert np.median(np.linalg.norm(md - [-1.0, 0.0], axis=-1)) <= 0.15


@pytest.mark.parametrize("dx, dy, params", [
    (2.0, -1.0, "bframes=3:b-pyramid=normal:ref=1"),
    (1.5, 0.5, "bframes=3:b-pyramid=normal:ref=3"),
])
def test_no_reencode_b_pyramid_md_is_the_true_motion_or_invalid(tmp_path, dx, dy, params):
    """x264's B-pyramid: B-frames refer to the middle B-frame of their group, and with ref=3
    P-frames to older anchors; each vector's frame is found, or the vector is invalid."""
    path = write_translating_video(tmp_path / "pyramid.mp4", height=96, width=128,
                                   num_frames=20, dx=dx, dy=dy, options={"x264-params": params})
    arrays, meta = extract_video(str(path), PrepSettings(cues=("md",), reencode=False))
    assert meta["encode"]["reference_distance"].startswith("searched per block")
    b_frames = [t for t, kind in enumerate(meta["frame_types"]) if kind == "B"]
    assert len(b_frames) >= 10
    valid_share = []
    for t in b_frames:
        full = arrays["md_valid"][t, 1:-1, 1:-1] > 0.99  # patches away from the border
        error = np.linalg.norm(arrays["md"][t, 1:-1, 1:-1][full] - [-dx, -dy], axis=-1)
        assert np.all(error <= 0.25), (t, error.max())
        valid_share.append(full.mean())
    assert np.mean(valid_share) >= 0.6, valid_share
