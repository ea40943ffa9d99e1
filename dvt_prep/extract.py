"""One video in, every requested cue out: decode (after the canonical re-encode), then cues.

`extract_video` is the per-video work function that the sequential loop, the process pool and
Dask all call; it returns plain numpy arrays and JSON-able metadata and touches no store.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field

import numpy as np

from dvt_prep import cues as C
from dvt_prep.decode import frame_type, iter_av_frames, probe, take_motion_vectors
from dvt_prep.encode import EncodeSettings, encode_canonical
from dvt_prep.errors import VideoError
from dvt_prep.flow import tvl1_flow
from dvt_prep.motion_vectors import GRID, rasterize, reference_distances

DEFAULT_CUES = ("rgb", "md", "rgbr", "rgbd")


@dataclass(frozen=True)
class PrepSettings:
    """Everything that decides a video's cues. Stored with every video."""

    cues: tuple[str, ...] = DEFAULT_CUES
    cue_grid: int = 4
    reencode: bool = True
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    rgb_codec: str = "jpeg"

    def __post_init__(self) -> None:
        unknown = [c for c in self.cues if c not in C.CUE_NAMES]
        if unknown:
            raise ValueError(f"unknown cue(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(C.CUE_NAMES)}")
        if self.cue_grid not in C.CUE_GRIDS:
            raise ValueError(f"cue grid must be one of {C.CUE_GRIDS}, got {self.cue_grid}")

    @property
    def array_names(self) -> tuple[str, ...]:
        """Every array stored: the cues and their validity arrays."""
        names = []
        for cue in self.cues:
            names.append(cue)
            if cue in C.VALIDITY:
                names.append(C.VALIDITY[cue])
        return tuple(names)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_video(path: str, settings: PrepSettings = PrepSettings()
                  ) -> tuple[dict[str, np.ndarray], dict]:
    """Cues of one video as arrays of SPEC section 3 (float32 / uint8 / bool), and its metadata.

    Raises VideoError (one line) for a video that cannot be decoded or re-encoded.
    """
    from dvt_prep import __version__

    info = probe(path)
    if settings.reencode:
        stream = io.BytesIO(encode_canonical(path, settings.encode, info=info))
        stream_format = "h264"
        encode = {"mode": "canonical", "encoder": "libx264", **settings.encode.as_dict()}
    else:
        stream, stream_format = path, None
        encode = {"mode": "source", "reference_distance": "inferred from frame types"}

    needs_vectors = any(c in settings.cues for c in ("mv", "md", "rgbr"))
    frames, types, vectors = [], [], []
    for frame in iter_av_frames(stream, motion_vectors=needs_vectors, format=stream_format):
        frames.append(frame.to_ndarray(format="rgb24"))
        types.append(frame_type(frame))
        vectors.append(take_motion_vectors(frame) if needs_vectors else None)
    if not frames:
        raise VideoError(f"{path}: no decodable frames; re-download or remove the file")
    if needs_vectors and not settings.reencode and all(len(v) == 0 for v in vectors[1:]) \
            and any(t != "I" for t in types):
        raise VideoError(f"{path}: codec {info.codec} exports no motion vectors; "
                         "drop --no-reencode to use the canonical H.264 re-encode")

    frame_types = "".join(types)
    arrays = compute_cues(frames, vectors, frame_types, settings)
    height, width = frames[0].shape[:2]
    meta = {
        "source_path": os.path.abspath(path),
        "source_codec": info.codec,
        "source_sha256": file_sha256(path),
        "fps": settings.encode.fps if (settings.reencode and settings.encode.fps) else info.fps,
        "original_size": [info.width, info.height],
        "stored_size": [width, height],
        "num_frames": len(frames),
        "frame_types": frame_types,
        "encode": encode,
        "cues": list(settings.cues),
        "arrays": list(arrays),
        "cue_grid": settings.cue_grid,
        "rgb_codec": settings.rgb_codec,
        "dvt_version": __version__,
    }
    return arrays, meta


def compute_cues(frames: list[np.ndarray], vectors: list[np.ndarray | None], frame_types: str,
                 settings: PrepSettings) -> dict[str, np.ndarray]:
    """Every requested array from decoded frames ((H, W, 3) uint8) and raw motion vectors."""
    count = len(frames)
    height, width = frames[0].shape[:2]
    g = settings.cue_grid
    grid_shape = (-(-height // GRID), -(-width // GRID))
    patch_shape = (-(-height // C.PATCH), -(-width // C.PATCH))
    cell_shape = (-(-height // g), -(-width // g))
    wanted = set(settings.cues)
    out: dict[str, np.ndarray] = {}
    if "rgb" in wanted:
        out["rgb"] = np.stack(frames)
    displacement = np.zeros((count, *grid_shape, 2), np.float32)
    valid = np.zeros((count, *grid_shape), bool)
    if wanted & {"mv", "md", "rgbr"}:
        distances = reference_distances(frame_types)
        for t in range(1, count):
            past, future = distances[t]
            displacement[t], valid[t] = rasterize(vectors[t], height, width,
                                                  past_distance=past, future_distance=future)
    if "mv" in wanted:
        out["mv"], out["mv_valid"] = displacement, valid
    if "md" in wanted:
        md = np.zeros((count, *patch_shape, 2), np.float32)
        md_valid = np.zeros((count, *patch_shape), np.float32)
        for t in range(1, count):
            md[t], md_valid[t] = C.motion_displacement(displacement[t], valid[t])
        out["md"], out["md_valid"] = md, md_valid
    # Cell means are linear, so differences of pooled frames equal pooled differences.
    pooled = [C.cell_mean(f, g) for f in frames] if wanted & {"rgbr", "rgbd"} else []
    if "rgbd" in wanted:
        rgbd = np.zeros((count, *cell_shape, 3), np.float32)
        for t in range(1, count):
            rgbd[t] = pooled[t] - pooled[t - 1]
        out["rgbd"] = rgbd
    if "rgbr" in wanted:
        rgbr = np.zeros((count, *cell_shape, 3), np.float32)
        for t in range(1, count):
            prediction = C.motion_compensate(frames[t - 1], displacement[t])
            rgbr[t] = pooled[t] - C.cell_mean(prediction, g)
        out["rgbr"] = rgbr
    if "tvl1" in wanted:
        flow = np.zeros((count, *cell_shape, 2), np.float32)
        for t in range(1, count):
            flow[t] = C.cell_mean(tvl1_flow(frames[t], frames[t - 1]), g)
        out["tvl1"] = flow
    return {name: out[name] for name in settings.array_names}


__all__ = ["DEFAULT_CUES", "PrepSettings", "compute_cues", "extract_video"]
