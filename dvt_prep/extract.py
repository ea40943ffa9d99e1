"""One video in, every requested cue out: decode (after the canonical re-encode), then cues.

`extract_video` is the per-video work function that the sequential loop, the process pool and
Dask all call; it returns plain numpy arrays and JSON-able metadata and touches no store.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from dvt_prep import cues as C
from dvt_prep import reference_search
from dvt_prep.cue_names import DEFAULT_CUES
from dvt_prep.decode import frame_type, iter_av_frames, probe, take_motion_vectors
from dvt_prep.encode import EncodeSettings, encode_canonical
from dvt_prep.errors import InputError, VideoError
from dvt_prep.flow import FLOW_BACKENDS, tvl1_flow
from dvt_prep.motion_vectors import GRID, rasterize, reference_distances
from dvt_prep.rgb_stream import split_stream
from dvt_prep.store_format import COMPUTED_CUES, RGB_CODECS


@dataclass(frozen=True)
class PrepSettings:
    """Everything that decides a video's cues. Stored with every video."""

    cues: tuple[str, ...] = DEFAULT_CUES
    cue_grid: int = 4
    reencode: bool = True
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    rgb_codec: str | None = None  # None: "h264" (the canonical stream) when re-encoding, else "jpeg"
    flow_backend: str = "torch"  # tvl1 by dvt's batched PyTorch TV-L1, or by OpenCV
    flow_device: str = "cpu"  # where the torch backend runs ("cpu", "cuda", "cuda:1")
    # Guards (not stored: they decide whether a video is prepped, not its cues).
    max_pixels: int | None = None  # source width x height above this: the video fails
    max_frames: int | None = None  # more decoded frames than this: the video fails
    time_limit: float | None = None  # seconds per video; longer: the video fails
    threads: int = 1  # compute threads per process (OpenCV, torch, the decoder); how, not what

    def __post_init__(self) -> None:
        if self.rgb_codec is None:
            object.__setattr__(self, "rgb_codec", "h264" if self.reencode else "jpeg")
        self.validate()

    def validate(self) -> None:
        """Raise InputError (one line) for settings no video can be prepped with."""
        if self.rgb_codec not in RGB_CODECS:
            raise InputError(f"unknown rgb codec {self.rgb_codec!r}; use one of "
                             f"{', '.join(RGB_CODECS)}")
        if self.rgb_codec == "h264" and not self.reencode:
            raise InputError("--rgb-codec h264 keeps the canonical stream, which --no-reencode "
                             "does not make; use --rgb-codec jpeg or lossless")
        unknown = [c for c in self.cues if c not in C.CUE_NAMES]
        if unknown:
            raise InputError(f"unknown cue(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(C.CUE_NAMES)}")
        if self.flow_backend not in FLOW_BACKENDS:
            raise InputError(f"flow backend must be one of {', '.join(FLOW_BACKENDS)}, got "
                             f"{self.flow_backend!r}")
        if "tvl1" in self.cues and self.flow_backend == "torch":
            _check_flow_device(self.flow_device)
        if self.threads < 1:
            raise InputError(f"threads must be at least 1, got {self.threads}")
        if self.cue_grid not in C.CUE_GRIDS:
            raise InputError(f"cue grid must be one of {C.CUE_GRIDS}, got {self.cue_grid}")

    @property
    def array_names(self) -> tuple[str, ...]:
        """Every array a reader gets: the cues and their validity arrays."""
        names = []
        for cue in self.cues:
            names.append(cue)
            if cue in C.VALIDITY:
                names.append(C.VALIDITY[cue])
        return tuple(names)

    @property
    def computed_cues(self) -> tuple[str, ...]:
        """Cues computed at read time from the stored canonical stream instead of stored:
        rgbr and rgbd when rgb is kept as H.264."""
        if self.rgb_codec != "h264" or "rgb" not in self.cues:
            return ()
        return tuple(c for c in self.cues if c in COMPUTED_CUES)

    def record(self) -> dict:
        """The settings a store records and a later run must match (docs/design.md §4): what
        decides the cues' values, not which cues (adding cues to a store is fine) nor the
        guards or the flow device."""
        encode = self.encode.as_dict() if self.reencode else dict.fromkeys(self.encode.as_dict())
        return {"encode_mode": "canonical" if self.reencode else "source", **encode,
                "cue_grid": self.cue_grid, "rgb_codec": self.rgb_codec,
                "flow_backend": self.flow_backend, "flow_parameters": FLOW_PARAMETERS}


FLOW_PARAMETERS = "OpenCV DualTVL1 defaults"  # both backends; see flow_torch.Tvl1Params


def _check_flow_device(device: str) -> None:
    """A device name the torch TV-L1 can take, or one InputError line saying why not."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise InputError(f"flow device {device!r} is not a device name; use cpu, cuda or "
                         "cuda:N") from None
    if kind not in ("cpu", "cuda"):
        raise InputError(f"flow device {device!r}: the torch TV-L1 runs on cpu or cuda")


def check_flow_device_here(settings: PrepSettings) -> None:
    """For work on this machine: a CUDA flow device needs CUDA here (a Dask cluster's workers
    may have it where the client has not, so this is not part of PrepSettings' checks)."""
    import torch

    if "tvl1" in settings.cues and settings.flow_backend == "torch" and \
            torch.device(settings.flow_device).type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"flow device {settings.flow_device!r}: this machine has no CUDA "
                         "device (or torch without CUDA); use --flow-device cpu")


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _TimeLimit:
    """A per-video deadline: checked between frames, and (in a process's main thread, where
    signals work) also enforced by SIGALRM, so a decode that stops returning still ends."""

    def __init__(self, path: str, seconds: float | None) -> None:
        self.path, self.seconds = path, seconds
        self.deadline = time.monotonic() + seconds if seconds else None
        self._armed = False

    def error(self) -> VideoError:
        return VideoError(f"{self.path}: took longer than {self.seconds:g} s (--time-limit); "
                          "check the file, or raise the limit")

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self.error()

    def __enter__(self) -> _TimeLimit:
        if self.seconds and hasattr(signal, "setitimer") and \
                threading.current_thread() is threading.main_thread():
            def expired(_signum, _frame):
                raise self.error()
            self._previous = signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)


def extract_video(path: str, settings: PrepSettings = PrepSettings()
                  ) -> tuple[dict[str, np.ndarray], dict]:
    """Cues of one video as arrays of docs/design.md §3 (float32 / uint8 / bool), and its metadata.

    Raises VideoError (one line) for a video that cannot be decoded or re-encoded, or that a
    guard of `settings` (max_pixels, max_frames, time_limit) stops.
    """
    with _TimeLimit(path, settings.time_limit) as limit:
        return _extract(path, settings, limit)


def _extract(path: str, settings: PrepSettings, limit: _TimeLimit
             ) -> tuple[dict[str, np.ndarray], dict]:
    from dvt_prep import __version__

    info = probe(path)
    if settings.max_pixels and info.width * info.height > settings.max_pixels:
        raise VideoError(f"{path}: {info.width}x{info.height} is more than --max-pixels "
                         f"{settings.max_pixels}; skip it or raise the limit")
    if settings.max_frames and info.num_frames > settings.max_frames:
        raise VideoError(f"{path}: {info.num_frames} frames is more than --max-frames "
                         f"{settings.max_frames}; skip it or raise the limit")
    canonical = b""
    if settings.reencode:
        canonical = encode_canonical(path, settings.encode, info=info)
        stream = io.BytesIO(canonical)
        stream_format = "h264"
        encode = {"mode": "canonical", "encoder": "libx264", **settings.encode.as_dict()}
    else:
        stream, stream_format = path, None
        encode = {"mode": "source", "reference_distance": reference_search.METHOD}

    needs_vectors = any(c in settings.cues for c in ("mv", "md", "rgbr"))
    frames, types, vectors = [], [], []
    for frame in iter_av_frames(stream, motion_vectors=needs_vectors, format=stream_format,
                                threads=settings.threads):
        if settings.max_frames and len(frames) >= settings.max_frames:
            raise VideoError(f"{path}: more than --max-frames {settings.max_frames} frames; "
                             "skip it or raise the limit")
        limit.check()
        # One thread: the frame keeps its converter, and a frame whose side data was read
        # lives until a garbage collection, which may run in a forked child (a DataLoader
        # worker), where freeing a converter that had threads waits for them for ever.
        frames.append(frame.to_ndarray(format="rgb24", threads=1))
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
    if "rgb" in arrays and settings.rgb_codec == "h264":
        try:
            arrays["rgb"] = split_stream(canonical, frame_types, height, width)
        except ValueError as exc:
            raise VideoError(f"{path}: {exc}; try --rgb-codec jpeg") from None
    meta = {
        "source_path": os.path.abspath(path),
        "source_codec": info.codec,
        "source_sha256": file_sha256(path),
        "source_bytes": os.path.getsize(path),
        "fps": settings.encode.fps if (settings.reencode and settings.encode.fps) else info.fps,
        "original_size": [info.width, info.height],
        "stored_size": [width, height],
        "num_frames": len(frames),
        "frame_types": frame_types,
        "encode": encode,
        "cues": list(settings.cues),
        "arrays": list(settings.array_names),
        "computed": list(settings.computed_cues),
        "cue_grid": settings.cue_grid,
        "rgb_codec": settings.rgb_codec,
        **({"flow_backend": settings.flow_backend} if "tvl1" in settings.cues else {}),
        "dvt_version": __version__,
    }
    return arrays, meta


def compute_cues(frames: list[np.ndarray], vectors: list[np.ndarray | None], frame_types: str,
                 settings: PrepSettings) -> dict[str, np.ndarray]:
    """Every requested array that is stored (not `settings.computed_cues`) from decoded frames
    ((H, W, 3) uint8) and raw motion vectors."""
    count = len(frames)
    height, width = frames[0].shape[:2]
    g = settings.cue_grid
    grid_shape = (-(-height // GRID), -(-width // GRID))
    patch_shape = (-(-height // C.PATCH), -(-width // C.PATCH))
    cell_shape = (-(-height // g), -(-width // g))
    wanted = set(settings.cues) - set(settings.computed_cues)
    out: dict[str, np.ndarray] = {}
    if "rgb" in wanted:
        out["rgb"] = np.stack(frames)
    displacement = np.zeros((count, *grid_shape, 2), np.float32)
    valid = np.zeros((count, *grid_shape), bool)
    if wanted & {"mv", "md", "rgbr"} and settings.reencode:
        distances = reference_distances(frame_types)  # every P-vector one frame back
        for t in range(1, count):
            past, future = distances[t]
            displacement[t], valid[t] = rasterize(vectors[t], height, width,
                                                  past_distance=past, future_distance=future)
    elif wanted & {"mv", "md", "rgbr"}:  # a source stream: each vector's reference searched
        greys = reference_search.grey_frames(frames)
        for t in range(1, count):
            scales = reference_search.vector_scales(vectors[t], t, greys)
            displacement[t], valid[t] = rasterize(vectors[t], height, width, scales=scales)
        del greys
    if "mv" in wanted:
        out["mv"], out["mv_valid"] = displacement, valid
    if "md" in wanted:
        md = np.zeros((count, *patch_shape, 2), np.float32)
        md_valid = np.zeros((count, *patch_shape), np.float32)
        for t in range(1, count):
            md[t], md_valid[t] = C.motion_displacement(displacement[t], valid[t])
        out["md"], out["md_valid"] = md, md_valid
    if "rgbd" in wanted:
        rgbd = np.zeros((count, *cell_shape, 3), np.float32)
        for t in range(1, count):
            rgbd[t] = C.difference(frames[t], frames[t - 1], g)
        out["rgbd"] = rgbd
    if "rgbr" in wanted:
        rgbr = np.zeros((count, *cell_shape, 3), np.float32)
        for t in range(1, count):
            rgbr[t] = C.residual(frames[t], frames[t - 1], displacement[t], g)
        out["rgbr"] = rgbr
    if "tvl1" in wanted:
        flow = np.zeros((count, *cell_shape, 2), np.float32)
        # pairs in blocks (the torch backend batches each), pooled block by block: a video's
        # full-resolution flows are never all in memory at once
        block = 32 if settings.flow_device == "cpu" else 256
        for start in range(1, count, block):
            stop = min(start + block, count)
            pairs = tvl1_flow(np.stack(frames[start:stop]), np.stack(frames[start - 1:stop - 1]),
                              backend=settings.flow_backend, device=settings.flow_device)
            for t in range(start, stop):
                flow[t] = C.cell_mean(pairs[t - start], g)
        out["tvl1"] = flow
    return {name: out[name] for name in settings.array_names if name in out}


__all__ = ["DEFAULT_CUES", "PrepSettings", "check_flow_device_here", "compute_cues",
           "extract_video"]
