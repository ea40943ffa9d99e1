"""`VideoClipDataset`: clips of cached cues streamed from stores (docs/design.md §7)."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from dvt_model.data import sampling
from dvt_model.data.flip_map import FlipLabelMap
from dvt_model.data.labels import UNLABELLED, Labels, read_labels
from dvt_model.data.transforms import Box, random_resized_box, short_side_boxes, transform_cue
from dvt_model.motion_path import follow_back
from dvt_prep.cues import CUE_NAMES, PATCH, VALIDITY  # PATCH: the patch of md and of avgp
from dvt_prep.errors import InputError
from dvt_prep.store_reader import Store, open_store

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# rgb from grey levels to ImageNet-normalised in one multiply-add, or, from uint8, one table
_RGB_SCALE = 1.0 / (255.0 * torch.tensor(IMAGENET_STD))
_RGB_SHIFT = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
_RGB_TABLE = (_RGB_SHIFT + torch.arange(256.0)[:, None] * _RGB_SCALE).numpy()[None]  # (1, 256, 3)
_VALIDITY = tuple(VALIDITY.values())  # over skipped frames: the smallest
# the store's cues, each followed by its validity array where it has one
STORED_CUES = tuple(name for cue in CUE_NAMES for name in (cue, VALIDITY.get(cue)) if name)
DATASET_CUES = STORED_CUES + ("avgp",)
MODES = ("train", "val", "test")
ON_MISSING = ("error", "skip")
_SUMMED = ("rgbr", "rgbd")  # over skipped frames: differences telescope, residuals add up


@dataclass(frozen=True)
class VideoEntry:
    store: int
    video_id: str
    num_frames: int
    height: int
    width: int
    label: int


class VideoClipDataset(IterableDataset):
    """Clips of cues from stores. Each sample is a dict: "video_id", "label", "start", "view",
    "padded", and one float32 tensor per cue, time first and channels last, (T, h, w, C), at the
    crop of `img_size` pixels (`rgb`: (T, S, S, 3) ImageNet-normalised; `md`: (T, S/16, S/16, 2)
    pixels of the crop; `rgbr`: (T, S/g, S/g, 3) grey levels; `avgp`: (T, S/16, S/16, 3) the
    per-patch mean of the normalised `rgb`).

    With `frame_stride` s the clip takes every s-th frame; displacements of the skipped frames
    are followed along the motion path, residuals and differences summed, validity the minimum.
    `batch_size` tells the worker split (see `sampling`); `on_missing="skip"` drops videos
    without a label and labels without a video instead of raising.
    """

    def __init__(self, stores: str | os.PathLike | Sequence[str | os.PathLike], *,
                 labels: str | os.PathLike | Labels | None = None,
                 cues: Sequence[str] = ("rgb", "md"), num_frames: int = 16,
                 frame_stride: int = 1, img_size: int = 224, mode: str = "train",
                 num_clips: int = 4, num_crops: int = 3, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, batch_size: int = 1,
                 scale: tuple[float, float] = (0.25, 1.0), flip: bool | None = None,
                 on_missing: str = "error", class_names: tuple[str, ...] | None = None) -> None:
        super().__init__()
        _check_options(cues, mode, img_size, on_missing)
        if isinstance(stores, (str, os.PathLike)):
            stores = [stores]
        self.store_paths = [os.fspath(s) for s in stores]
        self.cues = tuple(cues)
        self.num_frames, self.frame_stride, self.img_size = num_frames, frame_stride, img_size
        self.mode, self.num_clips, self.num_crops = mode, num_clips, num_crops
        self.seed, self.batch_size, self.scale, self.flip = seed, batch_size, scale, flip
        self.rank, self.world_size = _this_rank(rank, world_size)
        if isinstance(labels, (str, os.PathLike)):
            labels = read_labels(labels, class_names=class_names)
        self.labels = labels
        self._opened: tuple[int, list[Store]] | None = None
        self.class_names = labels.class_names if labels is not None else ()
        self.flip_map = FlipLabelMap.from_classes(self.class_names)
        self.videos = self._index_videos(on_missing)
        # Epoch and resume offset live in shared memory so that persistent DataLoader workers
        # see set_epoch / load_state_dict made in the main process.
        self._shared = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._seen = 0
        # what this process has yielded of the current iteration, and a worker's own resume
        self._offset, self._yielded = 0, 0
        self._worker_resume: dict | None = None

    # -- what the dataset holds --------------------------------------------------------------

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops if self.mode == "test" else 1

    @property
    def epoch(self) -> int:
        return int(self._shared[0])

    def __len__(self) -> int:
        """Samples this rank yields per epoch (all its workers together)."""
        return len(self._rank_items())

    def _index_videos(self, on_missing: str) -> list[VideoEntry]:
        entries = []
        for index, store in enumerate(self._stores()):
            for video_id in store.video_ids:
                meta = store.summary(video_id)
                missing = [c for c in self.cues if c != "avgp" and c not in meta["arrays"]]
                if "avgp" in self.cues and "rgb" not in meta["arrays"]:
                    missing.append("rgb")
                if missing:
                    raise InputError(f"{store.path}: video {video_id!r} has no {missing[0]!r} "
                                     f"(it has {', '.join(meta['arrays'])}); prep the store "
                                     f"with --cues {','.join(sorted(set(missing)))}")
                width, height = meta["stored_size"]
                entries.append(VideoEntry(index, video_id, meta["num_frames"], height, width,
                                          UNLABELLED))
        if self.labels is not None:
            entries = self._attach_labels(entries, on_missing)
        if not entries:
            raise InputError(f"no videos to read in {', '.join(self.store_paths)}")
        return entries

    def _attach_labels(self, entries: list[VideoEntry], on_missing: str) -> list[VideoEntry]:
        by_video = self.labels.by_video
        # Label files name videos by file stem (Kinetics, SSv2); store ids may carry folders.
        stems: dict[str, list[str]] = {}
        for entry in entries:
            stems.setdefault(entry.video_id.rsplit("/", 1)[-1], []).append(entry.video_id)
        labelled, used = [], set()
        unlabelled = []
        for entry in entries:
            key = entry.video_id if entry.video_id in by_video else \
                entry.video_id.rsplit("/", 1)[-1]
            if key not in by_video or (key != entry.video_id and len(stems[key]) > 1):
                unlabelled.append(entry.video_id)
                continue
            used.add(key)
            labelled.append(VideoEntry(entry.store, entry.video_id, entry.num_frames,
                                       entry.height, entry.width, by_video[key]))
        absent = sorted(set(by_video) - used)
        problems = []
        if unlabelled:
            problems.append(f"{len(unlabelled)} video(s) have no label (e.g. {unlabelled[0]!r})")
        if absent:
            problems.append(f"{len(absent)} labelled video(s) are not in the store(s) "
                            f"(e.g. {absent[0]!r})")
        if problems and on_missing == "error":
            raise InputError("; ".join(problems) + "; pass on_missing='skip' (--skip-missing) "
                             "to drop them")
        if problems:
            warnings.warn("skipping: " + "; ".join(problems), stacklevel=3)
        return labelled

    def _stores(self) -> list[Store]:
        # Opened lazily once per process: safe with fork and spawn, and after unpickling.
        if self._opened is None or self._opened[0] != os.getpid():
            self._opened = (os.getpid(), [open_store(p) for p in self.store_paths])
        return self._opened[1]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_opened"] = None
        return state

    # -- epochs and resuming -----------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's permutation. A resume offset set by `load_state_dict` holds until
        the epoch changes."""
        if epoch != self.epoch:
            self._shared[0], self._shared[1] = epoch, 0

    def state_dict(self) -> dict:
        """Epoch and samples this rank has yielded in it (when iterated in this process; with
        DataLoader workers, count the samples you consumed and pass that instead). Inside a
        DataLoader worker it also holds that worker's own position ("worker"), which is what
        torchdata's `StatefulDataLoader` snapshots per worker and hands back on resume."""
        state = {"epoch": self.epoch, "samples_seen": self._seen, "seed": self.seed}
        info = get_worker_info()
        if info is not None:
            state["worker"] = {"id": info.id, "num_workers": info.num_workers,
                               "offset": self._offset, "yielded": self._yielded}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state.get("seed", self.seed))
        worker = state.get("worker")
        if worker is not None and get_worker_info() is not None:
            # a worker's own snapshot: the rank's offset as it was, then skip what it yielded
            self._shared[0], self._shared[1] = int(state["epoch"]), int(worker["offset"])
            self._worker_resume = dict(worker)
            return
        self._shared[0], self._shared[1] = int(state["epoch"]), int(state["samples_seen"])
        self._seen = int(state["samples_seen"])

    # -- iteration ---------------------------------------------------------------------------

    def _rank_items(self) -> list[sampling.Item]:
        return sampling.rank_items(len(self.videos), self.num_views, seed=self.seed,
                                   epoch=self.epoch, rank=self.rank,
                                   world_size=self.world_size, drop_tail=self.mode == "train")

    def __iter__(self) -> Iterator[dict]:
        start = int(self._shared[1])
        items = self._rank_items()[start:]
        info = get_worker_info()
        skip = 0
        if info is not None:
            items = sampling.worker_share(items, info.id, info.num_workers, self.batch_size)
            resume, self._worker_resume = self._worker_resume, None
            if resume is not None and (resume["id"], resume["num_workers"], resume["offset"]) \
                    == (info.id, info.num_workers, start):
                skip = int(resume["yielded"])
        self._offset, self._yielded = start, skip
        self._seen = start + skip
        for item in items[skip:]:
            sample = self.load(item)
            self._seen += 1
            self._yielded += 1
            yield sample

    def load(self, item: sampling.Item) -> dict:
        """One sample: the clip and crop of `item`, every cue transformed together."""
        entry = self.videos[item.video]
        generator = torch.Generator().manual_seed(
            hash((self.seed, self.epoch, item.video, item.view)) & 0x7FFF_FFFF_FFFF)
        span = (self.num_frames - 1) * self.frame_stride + 1
        clip, crop = divmod(item.view, self.num_crops) if self.mode == "test" else (0, 0)
        starts = sampling.clip_starts(entry.num_frames, span, self.mode, self.num_clips,
                                      generator)
        start = starts[clip]
        frames = sampling.clip_frames(start, self.num_frames, self.frame_stride,
                                      entry.num_frames)
        if self.mode == "train":
            rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
            box = random_resized_box(rng, entry.height, entry.width, scale=self.scale,
                                     flip=self.flip is not False)
            label, box = self._mirror_label(entry.label, box)
        else:
            box = short_side_boxes(entry.height, entry.width,
                                   self.num_crops if self.mode == "test" else 1)[crop]
            label = entry.label
        sample = {"video_id": entry.video_id, "label": label, "start": start,
                  "view": item.view, "padded": item.padded}
        sample.update(self._cues(entry, frames, box))
        return sample

    def _mirror_label(self, label: int, box: Box) -> tuple[int, Box]:
        """The label of a mirrored clip under the flip label map: a mirror partner's label, or
        no mirror for a direction class without a partner (unless flips are forced)."""
        if not box.flip or label == UNLABELLED:
            return label, box
        partner = self.flip_map.partner[label]
        if partner is not None:
            return partner, box
        return (label, box) if self.flip else (label, replace(box, flip=False))

    def _cues(self, entry: VideoEntry, frames: list[int], box: Box) -> dict[str, torch.Tensor]:
        store = self._stores()[entry.store]
        stored_size = (entry.height, entry.width)
        wanted = set(self.cues) | ({"rgb"} if "avgp" in self.cues else set())
        out = {}
        for cue in sorted(wanted):
            if cue == "avgp":
                continue
            array = torch.from_numpy(np.ascontiguousarray(
                read_clip(store, entry.video_id, cue, frames, self.frame_stride, stored_size,
                          box=_pixels(box))))
            if array.ndim == 3:  # validity arrays: add a channel
                array = array[..., None]
            # resampled as stored (uint8 rgb: only the box is converted to float), then
            # normalised: the two commute, and the output is smaller than the frame
            array = transform_cue(cue, array, box, stored_size, self.img_size)
            if cue == "rgb":
                array = _normalise_rgb(array)
            if cue in _VALIDITY:
                array = array[..., 0]
            out[cue] = array.contiguous()
        if "avgp" in self.cues:
            rgb = out["rgb"]
            cells = self.img_size // PATCH
            out["avgp"] = rgb.reshape(len(frames), cells, PATCH, cells, PATCH, 3).mean((2, 4))
            if "rgb" not in self.cues:
                del out["rgb"]
        return out


def _check_options(cues: Sequence[str], mode: str, img_size: int, on_missing: str) -> None:
    """Raise InputError (one line) for options no store can be read with."""
    unknown = [c for c in cues if c not in DATASET_CUES]
    if unknown:
        raise InputError(f"unknown cue(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(DATASET_CUES)}")
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if img_size % PATCH:
        raise InputError(f"img_size must be a multiple of {PATCH}, got {img_size}")
    if on_missing not in ON_MISSING:
        raise InputError(f"on_missing must be one of {', '.join(ON_MISSING)}, got "
                         f"{on_missing!r}")


def _this_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size) when both are given; else from torch.distributed when it is
    initialised, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    ready = dist.is_available() and dist.is_initialized()
    return (dist.get_rank(), dist.get_world_size()) if ready else (0, 1)


def _normalise_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) grey levels to ImageNet-normalised float32; uint8 through a lookup table."""
    if rgb.dtype != torch.uint8:
        return torch.addcmul(_RGB_SHIFT, rgb, _RGB_SCALE)
    pixels = np.ascontiguousarray(rgb.numpy())
    return torch.from_numpy(cv2.LUT(pixels.reshape(-1, pixels.shape[-2], 3), _RGB_TABLE)
                            .reshape(pixels.shape))


def _pixels(box: Box) -> tuple[int, int, int, int]:
    """The stored pixels (y0, y1, x0, x1) a crop box covers."""
    return (math.floor(box.y0), math.ceil(box.y0 + box.height), math.floor(box.x0),
            math.ceil(box.x0 + box.width))


def read_clip(store: Store, video_id: str, cue: str, frames: list[int], stride: int,
              stored_size: tuple[int, int], box: tuple[int, int, int, int] | None = None
              ) -> np.ndarray:
    """One cue at the clip's frames, (T, ...) in docs/design.md §3's dtype. box: the stored
    pixels (y0, y1, x0, x1) that will be used (see `Store.read`); None: all.

    With stride > 1 the cue of sampled frame k covers every frame since sampled frame k-1:
    displacements followed along the motion path, residuals and differences summed, validity
    the minimum. A repeated frame (past the end of the video) has no motion: zeros, and validity 1.
    """
    if cue == "rgb":
        unique = sorted(set(frames))
        block = store.read_frames(video_id, cue, unique, box=box)
        return block if unique == frames else block[[unique.index(f) for f in frames]]
    first = max(0, frames[0] - stride + 1)
    block = store.read(video_id, cue, first, frames[-1] + 1, box=box)
    if frames == list(range(first, first + len(block))):  # the clip is the block
        return block
    if stride == 1 and len(set(frames)) == len(frames):
        return block[[f - first for f in frames]]
    out = np.zeros((len(frames),) + block.shape[1:], dtype=np.float32)
    cell = stored_size[0] / block.shape[1]
    for k, frame in enumerate(frames):
        previous = frames[k - 1] if k else frame - stride
        covered = block[max(first, previous + 1) - first: frame + 1 - first]
        out[k] = _over_skipped(cue, covered, cell)
    return out.astype(block.dtype) if cue in _VALIDITY else out


def _over_skipped(cue: str, covered: np.ndarray, cell: float) -> np.ndarray | float:
    """One cue over the consecutive frames `covered` (n, ...) that a strided clip's frame
    stands for: validity the smallest, residuals and differences summed, displacements followed
    along the motion path (cell: stored pixels per cue cell). No frame (a repeat): zero
    motion, validity 1."""
    if cue in _VALIDITY:
        return covered.min(0) if len(covered) else 1.0
    if len(covered) == 0:
        return 0.0
    if cue in _SUMMED:
        return covered.sum(0)
    if len(covered) == 1:
        return covered[0]
    return follow_back(torch.from_numpy(np.ascontiguousarray(covered)), cell).numpy()


def collate(samples: list[dict]) -> dict:
    """Stack a list of samples into the batch dict the models take: tensors stacked, numbers as
    tensors, strings as lists."""
    batch = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(values[0], (bool, int, float)):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch
