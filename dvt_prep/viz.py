"""Pictures of cues (`dvt viz`): motion as arrows or colours, residuals as images.

Displacement cues are stored backward (content at p came from p + d); the pictures show the
motion the eye sees, from t-1 to t: arrows from p + d to p, colours of -d. Colours follow the
Middlebury colour wheel of Baker et al. (IJCV 2011): hue is the direction (right = red, down =
yellow, left = cyan-blue, up = violet), saturation the speed relative to the largest.

"The largest" is the 99.5th-percentile speed of the frame drawn (`scale="frame"`, the default;
at least a quarter pixel, the motion vectors' finest step) or of the whole video
(`scale="video"`, one scale for every frame, so a fast shot elsewhere makes slow frames look
still). The magnification is written on every picture.
"""

from __future__ import annotations

import os

import av
import cv2
import numpy as np

from dvt_prep.cue_names import VIZ_CUES
from dvt_prep.errors import InputError
from dvt_prep.store_reader import Store

# Segment lengths of the wheel: red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta,
# magenta-red (from the Middlebury paper).
_SEGMENTS = (15, 6, 4, 11, 13, 6)
SCALES = ("frame", "video")
# per-frame scaling never magnifies below this speed (px / frame): quarter-pel, the finest step
# of H.264 motion vectors, so a still frame's rounding noise is not blown up to full length
_MIN_FRAME_SPEED = 0.25


def colour_wheel() -> np.ndarray:
    """(55, 3) uint8 RGB colours around the wheel, starting at red."""
    colours = []
    corners = [(255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255),
               (255, 0, 255), (255, 0, 0)]
    for start, end, steps in zip(corners[:-1], corners[1:], _SEGMENTS, strict=True):
        for i in range(steps):
            colours.append([s + (e - s) * i / steps for s, e in zip(start, end, strict=True)])
    return np.asarray(colours, dtype=np.float64)


def motion_to_colour(motion: np.ndarray, max_speed: float) -> np.ndarray:
    """(H, W, 2) motion (dx, dy) -> (H, W, 3) uint8 RGB. White is still; full colour at
    `max_speed`."""
    wheel = colour_wheel()
    dx, dy = motion[..., 0], motion[..., 1]
    speed = np.hypot(dx, dy) / max(max_speed, 1e-6)
    # angle 0 for rightward motion, turning clockwise on screen (y is down)
    angle = np.mod(np.arctan2(dy, dx), 2 * np.pi) / (2 * np.pi) * len(wheel)
    low = np.floor(angle).astype(int) % len(wheel)
    high = (low + 1) % len(wheel)
    frac = (angle - np.floor(angle))[..., None]
    colour = (1 - frac) * wheel[low] + frac * wheel[high]
    saturation = np.clip(speed, 0, 1)[..., None]
    colour = 255 - saturation * (255 - colour)  # towards white as speed goes to 0
    return colour.clip(0, 255).astype(np.uint8)


def _upsample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)


def _draw_arrows(frame: np.ndarray, motion: np.ndarray, valid: np.ndarray | None,
                 step: int, scale: float) -> np.ndarray:
    """Arrows from where content was (p - scale * motion) to where it is (p) on a grid of
    `step` px."""
    out = frame.copy()
    height, width = frame.shape[:2]
    cell_y, cell_x = height / motion.shape[0], width / motion.shape[1]
    every = max(1, round(step / cell_x))
    for i in range(0, motion.shape[0], every):
        for j in range(0, motion.shape[1], every):
            if valid is not None and not valid[i, j]:
                continue
            x, y = (j + 0.5) * cell_x, (i + 0.5) * cell_y
            dx, dy = motion[i, j] * scale
            if abs(dx) + abs(dy) < 0.5:
                continue
            start = (int(round(x - dx)), int(round(y - dy)))
            end = (int(round(x)), int(round(y)))
            cv2.arrowedLine(out, start, end, (0, 0, 0), 2, cv2.LINE_AA, tipLength=0.35)
            cv2.arrowedLine(out, start, end, (255, 255, 0), 1, cv2.LINE_AA, tipLength=0.35)
    return out


def _label(picture: np.ndarray, text: str) -> np.ndarray:
    """`text` in white on a black box in the bottom-left corner, shrunk to fit the width."""
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    (text_width, _), _ = cv2.getTextSize(text, font, size, 1)
    size *= min(1.0, (picture.shape[1] - 4) / text_width)
    (text_width, text_height), baseline = cv2.getTextSize(text, font, size, 1)
    bottom = picture.shape[0] - 1
    cv2.rectangle(picture, (0, bottom - text_height - baseline - 3), (text_width + 3, bottom),
                  (0, 0, 0), cv2.FILLED)
    cv2.putText(picture, text, (2, bottom - baseline - 1), font, size, (255, 255, 255), 1,
                cv2.LINE_AA)
    return picture


def _top_speed(motion: np.ndarray) -> float:
    """99.5th-percentile length (px / frame) of (..., 2) motion; 0 for none."""
    return float(np.percentile(np.hypot(motion[..., 0], motion[..., 1]), 99.5))


def render_frames(store: Store, video_id: str, cue: str, frames: list[int], *,
                  scale: str = "frame") -> np.ndarray:
    """(len(frames), H, 2W, 3) uint8: the decoded frame beside the picture of the cue (or the
    grey frame when the store has no rgb).

    `scale` sets what full arrow length / full colour means for mv, md and tvl1: the frame's own
    99.5th-percentile speed ("frame") or the whole video's ("video"); the magnification is
    written in the picture's bottom-left corner.
    """
    if cue not in VIZ_CUES:
        raise InputError(f"cannot draw cue {cue!r}; choose from {', '.join(VIZ_CUES)}")
    if scale not in SCALES:
        raise InputError(f"cannot scale by {scale!r}; choose from {', '.join(SCALES)}")
    arrays = store.cues(video_id)
    if cue not in arrays:
        raise InputError(f"{store.path}: video {video_id!r} has no {cue!r} (it has "
                         f"{', '.join(arrays)}); prep it with --cues {cue}")
    width, height = store.meta(video_id)["stored_size"]
    rgb = store.read_frames(video_id, "rgb", frames) if "rgb" in arrays else \
        np.full((len(frames), height, width, 3), 128, np.uint8)
    valid = store.read_frames(video_id, "mv_valid", frames) if cue == "mv" else None
    if cue in ("mv", "md", "tvl1") and scale == "video":  # the whole video's speeds
        every = store.read(video_id, cue)
        speeds = [_top_speed(every) or 1.0] * len(frames)
        data = every[frames]
    else:
        data = store.read_frames(video_id, cue, frames)
        speeds = [max(_top_speed(motion), _MIN_FRAME_SPEED) for motion in data] \
            if cue in ("mv", "md", "tvl1") else [None] * len(frames)
    pictures = []
    for k, max_speed in enumerate(speeds):
        if cue == "rgb":
            picture = rgb[k]
        elif cue == "mv":
            # the 99.5th-percentile speed drawn 0.9 of the grid step long
            magnification = 0.9 * 16 / max_speed
            picture = _label(_draw_arrows(rgb[k], -data[k], valid[k], step=16,
                                          scale=magnification), f"arrows x{magnification:.3g}")
        elif cue in ("md", "tvl1"):
            picture = _label(_upsample(motion_to_colour(-data[k], max_speed), height, width),
                             f"colour wheel full at {max_speed:.3g} px")
        else:  # residuals and differences: mid-grey is zero, x2 contrast
            picture = _upsample(np.clip(128 + 2 * data[k], 0, 255).astype(np.uint8), height,
                                width)
        pictures.append(np.concatenate([rgb[k], picture], axis=1))
    return np.stack(pictures)


def write_picture(store: Store, video_id: str, cue: str, out: str, *,
                  frame: int | None = None, fps: int = 10, scale: str = "frame") -> str:
    """OUT.png: one frame (default: the middle one); OUT.mp4: every frame, libx264. `scale`:
    see `render_frames`."""
    num_frames = store.meta(video_id)["num_frames"]
    extension = os.path.splitext(out)[1].lower()
    if extension not in (".png", ".mp4"):
        raise InputError(f"{out}: write a .png (one frame) or an .mp4 (the whole video)")
    if extension == ".png":
        index = num_frames // 2 if frame is None else frame
        if not 0 <= index < num_frames:
            raise InputError(f"frame {index} is outside video {video_id!r} "
                             f"({num_frames} frames)")
        image = render_frames(store, video_id, cue, [index], scale=scale)[0]
        if not cv2.imwrite(out, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise InputError(f"{out}: cannot write the picture; check the folder exists")
        return out
    pictures = render_frames(store, video_id, cue, list(range(num_frames)),
                             scale=scale)
    pictures = pictures[:, : pictures.shape[1] // 2 * 2, : pictures.shape[2] // 2 * 2]
    try:
        with av.open(out, mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width = pictures.shape[1:3]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18"}
            for picture in pictures:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            container.mux(stream.encode(None))
    except OSError as error:
        raise InputError(f"{out}: cannot write the video ({error})") from None
    return out
