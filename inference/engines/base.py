"""The render loop every engine shares: decode -> face boxes -> engine -> encode, in batches.

Three threads keep ffmpeg busy at both ends while Python works::

    source thread   ffmpeg decoder --readinto--> pooled frame buffers (and the ping-pong store)
    main thread     face detection on the Y plane, engine.process(batch) on the mouth region
    writer thread   pooled frame buffers --write--> ffmpeg encoder (x264 + AAC + faststart)

Frames stay yuv420p from decoder to encoder; buffers come from a fixed pool (memory is
``pool_size * batch_size * frame_bytes``, e.g. ~130 MB at 720p with batches of 16), so the
decoder can run at most a few batches ahead.

This module holds the engine interface (:class:`Engine`, :class:`RenderPlan`) and the main
thread's work; the source and writer threads, the buffer pool and the store that lets a short
avatar cover long audio (forward, backward, forward ...) are in
:mod:`inference.engines.pipeline`. Names other code imports from here (:class:`FrameBatch`,
:func:`pingpong_indices`) are re-exported.
"""

from __future__ import annotations

import abc
import collections
import concurrent.futures
import math
import os
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from inference.audio import SAMPLE_RATE, load_audio
from inference.catalog import EngineInfo
from inference.device import pick_device
from inference.engines.pipeline import END, FrameBatch, RenderThreads, pingpong_indices
from inference.errors import (
    EngineUnavailable,
    MediaError,
    NoFaceError,
    RenderCanceled,
)
from inference.face import FaceDetector, FaceTrack, detect_face_in_video
from inference.media.frames import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FrameReader,
    FrameWriter,
    container_for,
)
from inference.media.outputs import AtomicOutput, RenderResult
from inference.media.probing import MediaInfo, probe

__all__ = [
    "CancelFn",
    "Engine",
    "FrameBatch",
    "ProgressFn",
    "RenderPlan",
    "choose_fps",
    "pingpong_indices",
]

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def choose_fps(info: MediaInfo) -> str:
    """Output frame rate: the avatar's (as an exact ratio) when sane, else 25."""
    if info.frame_rate and info.fps and 1 <= info.fps <= 60:
        rate = Fraction(info.frame_rate)
        return str(rate.numerator) if rate.denominator == 1 else info.frame_rate
    return "25"


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


class Engine(abc.ABC):
    """Base class of lip-sync engines: subclasses implement :meth:`process` (and maybe
    :meth:`prepare`); :meth:`render` runs the shared pipeline."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Frames per batch when the caller does not say.
    default_batch_size: ClassVar[int] = 16
    #: Face detections per second of avatar video (boxes are interpolated in between).
    detections_per_second: ClassVar[float] = 3.0
    #: Decoded frames kept in memory for ping-pong before spilling to a temp file.
    store_memory_limit: ClassVar[int] = 512 * 1024 * 1024
    #: Seconds between two progress callbacks (the last one, total/total, always comes).
    progress_interval: ClassVar[float] = 0.5

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
        """Modify ``batch.frames`` in place (only around ``batch.boxes``)."""

    def torch_threads(self, device: torch.device) -> int | None:
        """Intra-op threads for torch during a render (None: leave torch's setting)."""
        return None

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
    ) -> RenderResult:
        """Render ``avatar`` lip-synced to ``audio`` into ``out`` (an .mp4) and describe it.

        The output lasts as long as the audio (to the frame) at the avatar's frame rate, with
        the avatar playing forward and backward as needed. ``progress(frames_done, total)`` is
        called at the start, at most every ``progress_interval`` seconds and at the end.
        ``should_cancel()`` is called between frame batches (keep it cheap); when it returns
        true, :class:`RenderCanceled` is raised and no output file is left. The file appears
        under its final name only when complete (temp name + rename); size, SHA-256 and CRC-32
        are taken in the same pass that fsyncs it.
        """
        ok, reason = self.availability()
        if not ok:
            raise EngineUnavailable(f"The {self.label} engine is not available: {reason}")
        if should_cancel is not None and should_cancel():
            raise RenderCanceled()
        torch_device = device if isinstance(device, torch.device) else pick_device(device)
        batch = max(1, int(batch_size or self.default_batch_size))
        plan = self._plan(Path(avatar), Path(audio), Path(out), torch_device, batch)
        threads = self.torch_threads(torch_device)
        old_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            self.prepare(plan)
            with AtomicOutput(plan.out) as target:
                written = self._run(plan, target.path, progress, should_cancel, crf, preset)
                digest = target.commit()
        finally:
            if threads:
                torch.set_num_threads(old_threads)
        final = probe(plan.out)
        return RenderResult(
            path=plan.out,
            bytes=digest.bytes,
            sha256=digest.sha256,
            crc32=digest.crc32,
            duration=final.duration,
            width=plan.width,
            height=plan.height,
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
    ) -> int:
        every = max(1, round(plan.fps_value / self.detections_per_second))
        max_pending = max(2, math.ceil(every / plan.batch_size) + 1)
        reader = FrameReader(plan.avatar, fps=plan.fps, info=plan.avatar_info)
        threads = RenderThreads(
            plan, reader, pool_size=max_pending + 4, memory_limit=self.store_memory_limit
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
        )
        threads.start(writer)
        finished = False
        try:
            written = self._main_loop(
                plan,
                threads.decoded,
                threads.to_write,
                threads.errors,
                every,
                max_pending,
                progress,
                should_cancel,
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
        every: int,
        max_pending: int,
        progress: ProgressFn | None,
        should_cancel: CancelFn | None,
    ) -> int:
        total = plan.n_frames
        detector = FaceDetector()
        track = FaceTrack()
        pending: collections.deque[FrameBatch] = collections.deque()
        done = 0
        last_report = time.monotonic()
        if progress:
            progress(0, total)

        def flush(force: bool) -> Iterator[FrameBatch]:
            while pending and (
                force or track.covers(int(pending[0].src_index.max())) or len(pending) > max_pending
            ):
                yield pending.popleft()

        ended = False
        while not ended:
            item = decoded.get()
            if errors:
                raise errors[0]
            if item is END:
                ended = True
                track.finished = True
            elif isinstance(item, tuple):  # (SOURCE_END, n_src): all detections are in
                track.finished = True
                continue
            else:
                assert isinstance(item, FrameBatch)
                if item.from_decoder:
                    self._detect(plan, item, detector, track, every)
                pending.append(item)
            for ready in list(flush(ended)):
                ready.boxes = track.boxes(ready.src_index)
                self.process(plan, ready)
                to_write.put(ready)
                done += len(ready)
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

    def _detect(
        self,
        plan: RenderPlan,
        batch: FrameBatch,
        detector: FaceDetector,
        track: FaceTrack,
        every: int,
    ) -> None:
        y, _, _ = batch.planes()
        for row, src in enumerate(batch.src_index):
            if src % every:
                continue
            box = detector.detect(y[row], near=track.last())
            if box is None and len(track) == 0 and src == 0:
                # The first frame shows no face: look through the first seconds instead.
                box = detect_face_in_video(plan.avatar, seconds=5.0, info=plan.avatar_info)
                if box is None:
                    raise NoFaceError(
                        "No face was found in the first seconds of the avatar video. Use a "
                        "video where one face looks at the camera, well lit and not too small."
                    )
            track.add(int(src), box)
