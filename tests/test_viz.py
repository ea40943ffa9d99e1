"""`dvt viz`: the colour wheel's directions, PNG and MP4 output, clear errors."""

from __future__ import annotations

import av
import cv2
import numpy as np

from dvt_prep.synthetic import shifting_frames, write_video
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


def test_viz_scales_each_frame_by_default(tmp_path):
    """A clip that drifts 0.5 px a frame except for a 12 px/frame shot: its middle frame still
    shows arrows and colours (per-frame scaling); `--scale video` shows dots and near-white."""
    steps = np.tile([0.5, 0.0], (23, 1))
    steps[2:6] = [12.0, 0.0]
    write_video(tmp_path / "fast_shot.mp4", shifting_frames(128, 160, steps, seed=3))
    store = tmp_path / "s.zarr"
    assert run_dvt("prep", tmp_path / "fast_shot.mp4", "-o", store, "--size", "128",
                   "--cues", "rgb,mv,md", "-q").exit_code == 0

    def picture(cue: str, *scale: str) -> np.ndarray:
        out = tmp_path / f"{cue}{'_'.join(scale)}.png"
        result = run_dvt("viz", store, "fast_shot", "--cue", cue, "-o", out, *scale)
        assert result.exit_code == 0, result.output
        image = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(int)
        return image[:-16], image[-16:, 160:]  # the label is in the bottom rows

    def arrow_pixels(image: np.ndarray) -> int:
        frame, drawn = image[:, :160], image[:, 160:]
        changed = np.abs(drawn - frame).max(-1) > 40
        yellow = (drawn[..., 0] > 200) & (drawn[..., 1] > 200) & (drawn[..., 2] < 80)
        return int((changed & yellow).sum())

    (per_frame, label), (per_video, _) = picture("mv"), picture("mv", "--scale", "video")
    assert arrow_pixels(per_frame) > 400  # 0.5 px drawn 10-14 px long every 16 px
    assert arrow_pixels(per_frame) > 8 * arrow_pixels(per_video)
    assert (label.max(-1) > 200).sum() > 20 and (label.max(-1) < 30).sum() > 200  # the text
    # md: rightward motion is red; per frame at least half saturated (the encoder finds a few
    # faster patches on some runs), per video nearly white
    (md_frame, _), (md_video, _) = picture("md"), picture("md", "--scale", "video")
    assert md_frame[:, 160:, 1].mean() < 150 and md_frame[:, 160:, 0].mean() > 200
    assert md_video[:, 160:, 1].mean() > 225
    result = run_dvt("viz", store, "fast_shot", "--cue", "mv", "-o", tmp_path / "mv.mp4")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "mv.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
