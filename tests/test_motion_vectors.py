"""motion_vectors() against mv-extractor's references, and the rasterisation's conventions."""

from __future__ import annotations

import numpy as np
import pytest

from dvt_prep import motion_vectors
from dvt_prep.motion_vectors import rasterize, reference_distances
from tests.conftest import shared_data


def _check_against_reference(video: str, reference: str) -> None:
    folder = shared_data("mv-extractor", "tests", "reference", reference)
    expected_types = [line.strip() for line in open(folder / "frame_types.txt")]
    results = list(motion_vectors(shared_data("mv-extractor", video)))
    types = [kind for kind, _ in results]
    assert types[: len(expected_types)] == expected_types
    files = sorted((folder / "motion_vectors").glob("mvs-*.npy"))
    assert len(files) > 100
    for path in files:
        index = int(path.stem.split("-")[1])
        reference_mvs = np.load(path)
        ours = results[index][1]
        assert ours.dtype == np.int32 and ours.shape[1] == 10
        assert np.array_equal(ours, reference_mvs), f"{video} frame {index} differs"


def test_motion_vectors_match_reference_p_only():
    _check_against_reference("vid_h264.mp4", "h264")


def test_motion_vectors_match_reference_with_b_frames_and_are_repeatable():
    _check_against_reference("vid_h264.264", "rtsp")
    path = shared_data("mv-extractor", "vid_h264.264")
    runs = [list(motion_vectors(path)) for _ in range(3)]
    for other in runs[1:]:
        assert [k for k, _ in other] == [k for k, _ in runs[0]]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(runs[0], other, strict=True))


def _vector(source, w, h, dst_x, dst_y, motion_x, motion_y, scale=4):
    return [source, w, h, dst_x + motion_x // scale, dst_y + motion_y // scale, dst_x, dst_y,
            motion_x, motion_y, scale]


def test_rasterize_backward_dx_dy_and_block_extent():
    vectors = np.array([
        _vector(-1, 16, 16, 8, 8, 6, -2),   # block x 0..15, y 0..15: d = (1.5, -0.5)
        _vector(-1, 8, 8, 20, 4, -4, 8),    # block x 16..23, y 0..7: d = (-1, 2)
    ], np.int32)
    displacement, valid = rasterize(vectors, 32, 32)
    assert displacement.shape == (8, 8, 2) and valid.shape == (8, 8)
    assert np.all(displacement[:4, :4] == [1.5, -0.5]) and valid[:4, :4].all()
    assert np.all(displacement[:2, 4:6] == [-1.0, 2.0]) and valid[:2, 4:6].all()
    assert not valid[4:].any() and not valid[:, 6:].any() and not valid[2:4, 4:6].any()
    assert np.all(displacement[~valid] == 0)


def test_rasterize_normalises_b_frame_vectors_to_one_frame_back():
    # Content moving +1 px/frame: past anchor 2 frames back has motion -2, future 1 ahead +1.
    vectors = np.array([_vector(-1, 16, 16, 8, 8, -8, 0), _vector(1, 16, 16, 8, 8, 4, 0)],
                       np.int32)
    displacement, valid = rasterize(vectors, 16, 16, past_distance=2, future_distance=1)
    assert np.allclose(displacement[valid], [-1.0, 0.0]) and valid.all()
    only_past, valid_past = rasterize(vectors, 16, 16, past_distance=2, future_distance=None)
    assert np.allclose(only_past[valid_past], [-1.0, 0.0])
    none, valid_none = rasterize(vectors, 16, 16, past_distance=None, future_distance=None)
    assert not valid_none.any() and not none.any()


def test_reference_distances_from_display_order():
    assert reference_distances("IBBPBP") == [
        (None, None), (1, 2), (2, 1), (3, None), (1, 1), (2, None)]


@pytest.mark.parametrize("path", ["missing.mp4"])
def test_motion_vectors_missing_file_is_one_line(tmp_path, path):
    from dvt_prep.errors import VideoError

    with pytest.raises(VideoError, match="no such file"):
        list(motion_vectors(tmp_path / path))
