"""Prep many videos into one store: skip the complete ones, record failures, report a summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dvt_prep.errors import DvtError
from dvt_prep.extract import PrepSettings, extract_video
from dvt_prep.inputs import VideoInput
from dvt_prep.store_reader import Store
from dvt_prep.store_settings import prepare_store
from dvt_prep.store_writer import StoreWriter
from dvt_prep.threads import set_compute_threads


@dataclass
class PrepReport:
    """What a run did: ids done, skipped (already complete), failed (id -> reason), and each
    video's status line in the order they finished."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    statuses: list[tuple[str, str, int]] = field(default_factory=list)

    def merge(self, other: PrepReport) -> None:
        """Add another run's counts (from another worker) to this one."""
        self.done += other.done
        self.skipped += other.skipped
        self.failed.update(other.failed)
        self.frames += other.frames
        self.statuses += other.statuses

    def summary(self) -> str:
        line = (f"{len(self.done)} done, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed, {self.frames} frames")
        for video_id, reason in list(self.failed.items())[:5]:
            line += f"\n  failed {video_id}: {reason}"
        if len(self.failed) > 5:
            line += f"\n  ... and {len(self.failed) - 5} more (`dvt inspect` lists them)"
        return line


def is_complete(store: Store, video_id: str, settings: PrepSettings) -> bool:
    """The store has the video with every array the settings ask for. (That the video was
    made with these settings, `prepare_store` checks for the whole store before a run.)"""
    return video_id in store and set(settings.array_names) <= set(store.cues(video_id))


def prep_videos(videos: list[VideoInput], output: str, settings: PrepSettings,
                on_video: Callable[[str, str, int], None] | None = None, *,
                retry_failed: bool = False) -> PrepReport:
    """Prep videos one after another into the store at `output`.

    on_video(video_id, status, frames) is called after each video with status "done",
    "skipped" or "failed: <reason>" and the frames it prepped. Failures are recorded in the
    store and do not stop the run. A video that failed in an earlier run is reported as failed
    again with its recorded reason, and tried again only with retry_failed. Raises
    StoreError before any work when the store was made with other settings.
    """
    set_compute_threads(settings.threads,
                        torch="tvl1" in settings.cues and settings.flow_backend == "torch")
    report = PrepReport()
    prepare_store(output, settings.record())  # stops here, store untouched, on other settings
    with StoreWriter(output, rgb_codec=settings.rgb_codec) as writer:
        existing = Store(output)
        earlier_failures = {} if retry_failed else existing.failures
        for video in videos:
            if is_complete(existing, video.video_id, settings):
                report.skipped.append(video.video_id)
                status, frames = "skipped", 0
            elif video.video_id in earlier_failures:
                reason = f"{earlier_failures[video.video_id]} (earlier run; --retry-failed)"
                report.failed[video.video_id] = reason
                status, frames = f"failed: {reason}", 0
            else:
                try:
                    arrays, meta = extract_video(video.path, settings)
                except DvtError as exc:
                    report.failed[video.video_id] = str(exc)
                    writer.add_failure(video.video_id, str(exc))
                    status, frames = f"failed: {exc}", 0
                else:
                    writer.add_video(video.video_id, arrays, meta)
                    report.done.append(video.video_id)
                    frames = meta["num_frames"]
                    report.frames += frames
                    status = "done"
            report.statuses.append((video.video_id, status, frames))
            if on_video is not None:
                on_video(video.video_id, status, frames)
    return report
