"""tvl1_flow against Middlebury ground truth, and its conventions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dvt_prep import tvl1_flow
from tests.conftest import shared_data


def read_flo(path) -> np.ndarray:
    with open(path, "rb") as handle:
        assert np.fromfile(handle, np.float32, 1)[0] == 202021.25
        width, height = np.fromfile(handle, np.int32, 2)
        return np.fromfile(handle, np.float32, width * height * 2).reshape(height, width, 2)


@pytest.mark.parametrize("backend", ["torch", "opencv"])
@pytest.mark.parametrize("name, bound", [("RubberWhale", 0.165), ("Dimetrodon", 0.19)])
def test_tvl1_epe_on_middlebury(name, bound, backend):
    folder = shared_data("flow", "middlebury", name)
    frame_a = cv2.imread(str(folder / "frame10.png"))[..., ::-1]
    frame_b = cv2.imread(str(folder / "frame11.png"))[..., ::-1]
    truth = read_flo(folder / "flow10.flo")
    flow = tvl1_flow(frame_a, frame_b, backend=backend)
    assert flow.shape == truth.shape and flow.dtype == np.float32
    known = np.all(np.abs(truth) < 1e9, axis=-1)
    epe = np.linalg.norm(flow - truth, axis=-1)[known].mean()
    assert epe <= bound, epe


@pytest.mark.parametrize("backend", ["torch", "opencv"])
def test_tvl1_batched_equals_one_by_one_and_grey_equals_rgb(backend):
    from dvt_prep.synthetic import translating_frames

    frames = translating_frames(48, 64, 3, 1.0, 0.5)
    batched = tvl1_flow(frames[:-1], frames[1:], backend=backend)
    assert batched.shape == (2, 48, 64, 2)
    assert np.array_equal(batched[1], tvl1_flow(frames[1], frames[2], backend=backend))
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    assert np.array_equal(tvl1_flow(grey[0], grey[1], backend=backend), batched[0])
    # frame 1 is frame 0 moved by (+1, +0.5): pixel p of frame 0 is at p + (1, 0.5) in frame 1
    assert np.allclose(np.median(batched[0][8:-8, 8:-8], axis=(0, 1)), [1.0, 0.5], atol=0.1)


def test_tvl1_rejects_bad_frames():
    with pytest.raises(ValueError, match="uint8"):
        tvl1_flow(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="shape"):
        tvl1_flow(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))
