"""Shared fixtures: videos made in the tests with PyAV's libx264, and the reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dvt_prep.synthetic import write_translating_video

SHARED = Path(os.environ.get("DVT_REFERENCE_DATA") or
              Path(__file__).resolve().parents[1].parent / "shared" / "data")


def shared_data(*parts: str) -> Path:
    """A path under the reference data (../shared/data, or $DVT_REFERENCE_DATA), or a skip
    that says so in the run's summary (pytest -ra, the default here)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the reference data {path} (mv-extractor clips and references, "
                    "Middlebury/Sintel flow), which is not part of the repository; point "
                    "DVT_REFERENCE_DATA at a copy to run it")
    return path


# Sub-pixel motion at an unscaled size (--size 128), integer motion at sizes that are not
# multiples of 16 (so the canonical re-encode rescales them a little), landscape and portrait.
VIDEO_SPECS = {
    "landscape_sub": dict(height=128, width=176, dx=1.5, dy=0.5),
    "landscape_odd": dict(height=120, width=200, dx=2.0, dy=-1.0),
    "portrait_odd": dict(height=200, width=120, dx=1.0, dy=2.0),
}


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small translating-texture videos, made once per session."""
    folder = tmp_path_factory.mktemp("videos")
    for name, spec in VIDEO_SPECS.items():
        write_translating_video(folder / f"{name}.mp4", num_frames=20, seed=len(name), **spec)
    return folder


def run_dvt(*args: str):
    """Run the click app in process; returns click's Result."""
    from click.testing import CliRunner

    from cli.main import main

    return CliRunner().invoke(main, [os.fspath(a) for a in args])
