"""Sources other than H.264: VP9 in WebM and MPEG-4 Part 2 are re-encoded like any other;
`--no-reencode` on VP9 (no motion vectors exported) is a clear per-video failure."""

from __future__ import annotations

import numpy as np
import pytest

from dvt_prep import open_store
from dvt_prep.synthetic import translating_frames, write_video
from tests.conftest import run_dvt


@pytest.fixture(scope="module")
def other_codecs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codecs")
    frames = translating_frames(96, 128, 12, 2.0, 0.0)
    write_video(folder / "vp9.webm", frames, codec="libvpx-vp9")
    write_video(folder / "part2.mp4", frames, codec="mpeg4", options={"qscale": "2"})
    return folder


def test_vp9_and_mpeg4_are_prepped_via_the_canonical_encode(tmp_path, other_codecs):
    result = run_dvt("prep", other_codecs, "-o", tmp_path / "s.zarr", "--cues", "md",
                     "--size", "96")
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "s.zarr")
    assert store.video_ids == ["part2", "vp9"]
    assert {store.meta(v)["source_codec"] for v in store.video_ids} == {"mpeg4", "vp9"}
    for video_id in store.video_ids:
        md = store.read(video_id, "md")[1:, 1:-1, 1:-1]
        assert np.median(md.reshape(-1, 2), axis=0) == pytest.approx([-2.0, 0.0], abs=0.25)


def test_no_reencode_on_vp9_is_a_clear_failure(tmp_path, other_codecs):
    result = run_dvt("prep", other_codecs / "vp9.webm", "-o", tmp_path / "s.zarr", "--cues",
                     "md", "--no-reencode")
    assert result.exit_code == 1
    assert "exports no motion vectors" in result.output and "Traceback" not in result.output
