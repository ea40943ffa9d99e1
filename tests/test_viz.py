"""`dvt viz`: the colour wheel's directions, PNG and MP4 output, clear errors."""

from __future__ import annotations

import av
import cv2
import numpy as np

from dvt_prep.viz import motion_to_colour
from tests.conftest import run_dvt


def test_colour_wheel_directions():
    directions = {"right": (1, 0), "down": (0, 1), "left": (-1, 0), "up": (0, -1)}
    colours = {name: motion_to_colour(np.array([[d]], np.float32), 1.0)[0, 0]
               for name, d in directions.items()}
    assert tuple(colours["right"]) == (255, 0, 0)
    red, green, blue = (int(c) for c in colours["down"])
    assert red > 200 and green > 150 and blue < 50  # yellow-orange
    assert colours["left"][2] > 200 and colours["left"][0] < 50  # cyan-blue
    assert colours["up"][2] > 200 and colours["up"][0] > 50  # violet
    still = motion_to_colour(np.zeros((1, 1, 2), np.float32), 1.0)[0, 0]
    assert tuple(still) == (255, 255, 255)


def test_viz_png_and_mp4(tmp_path, video_dir):
    store = tmp_path / "s.zarr"
    assert run_dvt("prep", video_dir / "landscape_sub.mp4", "-o", store, "--size", "128",
                   "--cues", "rgb,mv,md,rgbr", "-q").exit_code == 0
    for cue in ("rgb", "mv", "md", "rgbr"):
        result = run_dvt("viz", store, "landscape_sub", "--cue", cue, "-o", tmp_path / f"{cue}.png")
        assert result.exit_code == 0, result.output
        image = cv2.imread(str(tmp_path / f"{cue}.png"))
        assert image.shape == (128, 2 * 176, 3)
    # md: content moves right (+1.5 px a frame) -> red-ish on the picture's right half
    picture = cv2.cvtColor(cv2.imread(str(tmp_path / "md.png")), cv2.COLOR_BGR2RGB)
    red, green, blue = picture[40:90, 176 + 40:176 + 130].reshape(-1, 3).mean(0)
    assert red > 200 and green < 200 and blue < 200
    result = run_dvt("viz", store, "landscape_sub", "--cue", "md", "-o", tmp_path / "md.mp4")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "md.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20
    for args, message in ((["--cue", "tvl1", "-o", tmp_path / "x.png"], "has no 'tvl1'"),
                          (["--cue", "md", "-o", tmp_path / "x.gif"], "write a .png"),
                          (["--cue", "md", "-o", tmp_path / "x.png", "--frame", "99"],
                           "outside video")):
        result = run_dvt("viz", store, "landscape_sub", *args)
        assert result.exit_code == 1 and message in result.output, result.output
    result = run_dvt("viz", store, "nope", "--cue", "md", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and "no video 'nope'" in result.output
