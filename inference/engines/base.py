"""The render loop every engine shares: decode -> landmarks -> engine -> encode, in batches.

Four threads keep ffmpeg busy at both ends while Python works::

    source thread   ffmpeg decoder --readinto--> pooled frame buffers (and the ping-pong store)
    stage thread    face landmarks of each avatar frame as it is decoded (the mesh on every
                    TRACK_STRIDE-th frame, the ones between interpolated unless the face moved
                    unsteadily); only when no prepared avatar is given
    main thread     engine.process(batch) on the mouth region
    writer thread   pooled frame buffers --write--> ffmpeg encoder (x264 + AAC + faststart)

Frames stay yuv420p from decoder to encoder; buffers come from a fixed pool (memory is
``pool_size * batch_size * frame_bytes``, e.g. ~130 MB at 720p with batches of 16), so the
decoder can run at most a few batches ahead.

Every batch reaches :meth:`Engine.process` with ``batch.landmarks`` (the 468 mesh points of each
frame) and ``batch.boxes`` (their bounding boxes). They come from a prepared avatar when the
caller passes one (:class:`~inference.engines.prepare.AvatarPrep`: nothing is tracked), else
from a :class:`~inference.engines.prepare.SourceTracker` run on each avatar frame as it is
decoded (the frames the ping-pong replays reuse them).

This module holds the engine interface (:class:`Engine`, :class:`RenderPlan`) and the main
thread's work; the source and writer threads, the buffer pool and the store that lets a short
avatar cover long audio (forward, backward, forward ...) are in
:mod:`inference.engines.pipeline`. Names other code imports from here (:class:`FrameBatch`,
:func:`pingpong_indices`, :func:`choose_fps`) are re-exported.
"""

from __future__ import annotations

import abc
import concurrent.futures
import logging
import math
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import torch

from inference.audio import SAMPLE_RATE, load_audio
from inference.catalog import EngineInfo
from inference.device import pick_device
from inference.engines.pipeline import END, FrameBatch, RenderThreads, pingpong_indices
from inference.engines.prepare import (
    AvatarPrep,
    SourceTracker,
    boxes_from_landmarks,
    choose_fps,
    prepare_avatar,
)
from inference.errors import EngineUnavailable, MediaError, RenderCanceled
from inference.media.frames import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FrameReader,
    FrameWriter,
    container_for,
)
from inference.media.outputs import AtomicOutput, OutputOptions, RenderResult
from inference.media.probing import MediaInfo, probe

__all__ = [
    "AvatarPrep",
    "CancelFn",
    "Engine",
    "FrameBatch",
    "ProgressFn",
    "RenderPlan",
    "choose_fps",
    "pingpong_indices",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]

#: Batches the decoder may run ahead of the main thread (pool buffers, besides the ones in use).
POOL_SIZE = 6


@dataclass
class RenderPlan:
    """What an engine needs to know about one render, fixed before the first frame."""

    avatar: Path
    audio: Path
    out: Path
    avatar_info: MediaInfo
    samples: np.ndarray  # 16 kHz mono float32
    audio_duration: float
    width: int
    height: int
    fps: str  # exact ratio, for ffmpeg
    fps_value: float
    n_frames: int
    device: torch.device
    batch_size: int
    #: The prepared avatar in use (None: landmarks are tracked during the render).
    prepared: AvatarPrep | None = None


class Engine(abc.ABC):
    """Base class of lip-sync engines: subclasses implement :meth:`process` (and maybe
    :meth:`prepare` and :meth:`extend_prep`); :meth:`render` runs the shared pipeline."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Frames per batch when the caller does not say.
    default_batch_size: ClassVar[int] = 16
    #: Decoded frames kept in memory for ping-pong before spilling to a temp file.
    store_memory_limit: ClassVar[int] = 512 * 1024 * 1024
    #: Seconds between two progress callbacks (the last one, total/total, always comes).
    progress_interval: ClassVar[float] = 0.5

    #: Avatar frames whose face was tracked during the last render (0 with a prepared avatar).
    tracked_frames: int = 0

    def availability(self) -> tuple[bool, str]:
        """``(True, "")`` when the engine can run here, else ``(False, reason)``."""
        return True, ""

    def info(self) -> EngineInfo:
        """This engine as the registry lists it."""
        ok, reason = self.availability()
        return EngineInfo(self.name, self.label, ok, reason, self.description)

    def prepare(self, plan: RenderPlan) -> None:  # noqa: B027 - optional hook
        """Per-render setup (audio features, model loading) before the first batch."""

    @abc.abstractmethod
    def process(self, plan: RenderPlan, batch: FrameBatch) -> None:
        """Modify ``batch.frames`` in place (only around the face: ``batch.landmarks``,
        ``batch.boxes``)."""

    def torch_threads(self, device: torch.device) -> int | None:
        """Intra-op threads for torch during a render (None: leave torch's setting)."""
        return None

    # ------------------------------------------------------------------ prepared avatars

    def extend_prep(self, prep: AvatarPrep, batch: FrameBatch) -> None:  # noqa: B027 - hook
        """Add this engine's own per-avatar data to ``prep.extra[self.name]`` (called with
        every decoded avatar frame once, by :meth:`prepare_avatar`). Nothing by default."""

    def prepare_avatar(
        self,
        avatar: str | os.PathLike[str],
        *,
        out: str | os.PathLike[str] | None = None,
        batch_size: int | None = None,
        should_cancel: CancelFn | None = None,
    ) -> AvatarPrep:
        """Measure ``avatar`` once for every later render with this engine (landmarks, plus
        what :meth:`extend_prep` adds); saved to ``out`` when given. See
        :func:`inference.engines.prepare.prepare_avatar`."""
        return prepare_avatar(
            avatar,
            hooks=[self],
            batch_size=int(batch_size or self.default_batch_size),
            out=out,
            should_cancel=should_cancel,
        )

    # ------------------------------------------------------------------ the pipeline

    def render(
        self,
        avatar: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str],
        progress: ProgressFn | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        should_cancel: CancelFn | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        prepared: AvatarPrep | None = None,
        output: OutputOptions | None = None,
    ) -> RenderResult:
        """Render ``avatar`` lip-synced to ``audio`` into ``out`` (an .mp4) and describe it.

        The output lasts as long as the audio (to the frame) at the avatar's frame rate, with
        the avatar playing forward and backward as needed. ``progress(frames_done, total)`` is
        called at the start, at most every ``progress_interval`` seconds and at the end.
        ``should_cancel()`` is called between frame batches (keep it cheap); when it returns
        true, :class:`RenderCanceled` is raised and no output file is left. The file appears
        under its final name only when complete (temp name + rename); size, SHA-256 and CRC-32
        are taken in the same pass that fsyncs it.

        ``prepared`` is this avatar's :class:`AvatarPrep` (from :meth:`prepare_avatar`): its
        landmarks are used and no face is tracked. One that does not fit the avatar (another
        frame size or rate, other face models) is ignored and the face is tracked as without.

        ``output`` (resolution, quality preset, watermark, burned-in subtitles) is applied in
        the same encode (:class:`~inference.media.outputs.OutputOptions`); its files are
        checked before any frame is rendered.
        """
        ok, reason = self.availability()
        if not ok:
            raise EngineUnavailable(f"The {self.label} engine is not available: {reason}")
        if should_cancel is not None and should_cancel():
            raise RenderCanceled()
        if output is not None:
            output.check()
        torch_device = device if isinstance(device, torch.device) else pick_device(device)
        batch = max(1, int(batch_size or self.default_batch_size))
        plan = self._plan(Path(avatar), Path(audio), Path(out), torch_device, batch)
        if prepared is not None:
            if prepared.fits(plan.width, plan.height, plan.fps):
                plan.prepared = prepared
            else:
                log.warning(
                    "The prepared avatar does not fit %s (made for %dx%d at %s fps with other "
                    "models or format?): tracking the face instead.",
                    plan.avatar.name, prepared.width, prepared.height, prepared.fps,
                )  # fmt: skip
        threads = self.torch_threads(torch_device)
        old_threads, old_cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
        if threads:
            torch.set_num_threads(threads)
        # The face mesh is small: split over threads it costs a quarter more CPU for the same
        # work, CPU the encoder needs (the render is as fast as ffmpeg lets it be).
        cv2.setNumThreads(1)
        try:
            self.prepare(plan)
            with AtomicOutput(plan.out) as target:
                written = self._run(plan, target.path, progress, should_cancel, crf, preset, output)
                digest = target.commit()
        finally:
            cv2.setNumThreads(old_cv2_threads)
            if threads:
                torch.set_num_threads(old_threads)
        final = probe(plan.out)
        return RenderResult(
            path=plan.out,
            bytes=digest.bytes,
            sha256=digest.sha256,
            crc32=digest.crc32,
            duration=final.duration,
            width=final.width or plan.width,
            height=final.height or plan.height,
            frames=written,
            fps=plan.fps_value,
            engine=self.name,
            device=str(torch_device),
        )

    def _plan(
        self, avatar: Path, audio: Path, out: Path, device: torch.device, batch_size: int
    ) -> RenderPlan:
        # Decoding the audio and probing the avatar are both ffmpeg runs: overlap them.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            audio_job = pool.submit(load_audio, audio)
            avatar_info = probe(avatar)  # its error, if any, wins: the avatar is listed first
            if not avatar_info.has_video:
                raise MediaError(
                    "The avatar has no video stream: choose a video of a face.", path=str(avatar)
                )
            samples = audio_job.result()
        duration = len(samples) / SAMPLE_RATE
        fps = choose_fps(avatar_info)
        fps_value = float(Fraction(fps))
        n_frames = max(1, math.ceil(duration * fps_value - 1e-6))
        reader = FrameReader(avatar, info=avatar_info)  # validates the size
        return RenderPlan(
            avatar=avatar,
            audio=audio,
            out=out,
            avatar_info=avatar_info,
            samples=samples,
            audio_duration=duration,
            width=reader.width,
            height=reader.height,
            fps=fps,
            fps_value=fps_value,
            n_frames=n_frames,
            device=device,
            batch_size=batch_size,
        )

    def _run(
        self,
        plan: RenderPlan,
        tmp_out: Path,
        progress: ProgressFn | None,
        should_cancel: CancelFn | None,
        crf: int,
        preset: str,
        output: OutputOptions | None = None,
    ) -> int:
        reader = FrameReader(plan.avatar, fps=plan.fps, info=plan.avatar_info)
        self.tracked_frames = 0
        tracker = None
        if plan.prepared is None:
            tracker = SourceTracker(
                plan.avatar, plan.avatar_info, plan.fps_value, plan.width, plan.height
            )
        threads = RenderThreads(
            plan,
            reader,
            pool_size=POOL_SIZE,
            memory_limit=self.store_memory_limit,
            # Tracking gets its own thread, alongside the decoder and the engine.
            stage=None if tracker is None else (lambda batch: self._track(batch, tracker)),
        )
        writer = FrameWriter(
            tmp_out,
            plan.width,
            plan.height,
            plan.fps,
            audio=plan.audio,
            duration=plan.audio_duration,
            crf=crf,
            preset=preset,
            container=container_for(plan.out),
            options=output,
        )
        threads.start(writer)
        finished = False
        try:
            written = self._main_loop(
                plan,
                threads.decoded,
                threads.to_write,
                threads.errors,
                progress,
                should_cancel,
                tracker,
            )
            threads.finish()
            finished = True
            return written
        finally:
            threads.shutdown(finished)

    def _main_loop(
        self,
        plan: RenderPlan,
        decoded: queue.Queue[object],
        to_write: queue.Queue[object],
        errors: list[BaseException],
        progress: ProgressFn | None,
        should_cancel: CancelFn | None,
        tracker: SourceTracker | None,
    ) -> int:
        total = plan.n_frames
        done = 0
        last_report = time.monotonic()
        if progress:
            progress(0, total)
        while True:
            item = decoded.get()
            if errors:
                raise errors[0]
            if item is END:
                break
            if not isinstance(item, FrameBatch):  # (SOURCE_END, n_src): nothing to do
                continue
            self.attach_landmarks(item, plan.prepared, tracker)
            self.process(plan, item)
            to_write.put(item)
            done += len(item)
            now = time.monotonic()
            if progress and (done >= total or now - last_report >= self.progress_interval):
                progress(done, total)
                last_report = now
            if should_cancel is not None and done < total and should_cancel():
                raise RenderCanceled()
        if errors:
            raise errors[0]
        if done == 0:
            raise MediaError("No frame could be decoded from the avatar video.")
        return done

    def _track(self, batch: FrameBatch, tracker: SourceTracker) -> None:
        """Measure the faces of a batch fresh from the decoder (in the stage thread)."""
        y, u, v = batch.planes()
        tracker.add(y, u, v, batch.src_index)
        self.tracked_frames += len(batch)
        batch.landmarks = tracker.points(batch.src_index)

    @staticmethod
    def attach_landmarks(
        batch: FrameBatch, prepared: AvatarPrep | None, tracker: SourceTracker | None
    ) -> None:
        """Set ``batch.landmarks`` (unless the stage thread's tracking did) and ``batch.boxes``:
        from the prepared avatar, else from the tracker (frames replayed by the ping-pong were
        all measured when they were decoded)."""
        if batch.landmarks is None:
            if prepared is not None:
                batch.landmarks = prepared.points(batch.src_index)
            else:
                assert tracker is not None
                batch.landmarks = tracker.points(batch.src_index)
        batch.boxes = boxes_from_landmarks(batch.landmarks)
