"""The render loop every engine shares: decode -> face boxes -> engine -> encode, in batches.

Three threads keep ffmpeg busy at both ends while Python works::

    source thread   ffmpeg decoder --readinto--> pooled frame buffers (and the ping-pong store)
    main thread     face detection on the Y plane, engine.process(batch) on the mouth region
    writer thread   pooled frame buffers --write--> ffmpeg encoder (x264 + AAC + faststart)

Frames stay yuv420p from decoder to encoder; buffers come from a fixed pool (memory is
``pool_size * batch_size * frame_bytes``, e.g. ~130 MB at 720p with batches of 16), so the
decoder can run at most a few batches ahead.

**Covering the audio.** Avatar frames play forward, then backward, then forward ... until the
audio ends (:func:`pingpong_indices`). The first forward pass streams from the decoder. When the
audio is longer than the avatar, that pass also keeps the decoded frames for the backward
passes: in memory when they fit in ``store_memory_limit`` (512 MiB: ~15 s of 720p), otherwise in
a raw temporary file next to the output, read back frame by frame (the page cache does the
rest), so memory stays bounded whatever the lengths. Decoding backward with seeks instead
would decode each GOP many times over.
"""

from __future__ import annotations

import abc
import collections
import concurrent.futures
import contextlib
import math
import os
import queue
import tempfile
import threading
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
from inference.errors import (
    EngineUnavailable,
    InferenceError,
    MediaError,
    NoFaceError,
    RenderCanceled,
)
from inference.face import FaceDetector, FaceTrack, detect_face_in_video
from inference.media import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    AtomicOutput,
    FrameReader,
    FrameWriter,
    MediaInfo,
    RenderResult,
    container_for,
    probe,
    yuv_planes,
)

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def pingpong_indices(out_indices: np.ndarray | list[int], n_src: int) -> np.ndarray:
    """Source frame for each output frame when ``n_src`` frames play forward and backward.

    0, 1, ..., n-1, n-2, ..., 1, 0, 1, ... (the end frames are not shown twice in a row).
    """
    idx = np.asarray(out_indices, dtype=np.int64)
    if n_src <= 1:
        return np.zeros_like(idx)
    period = 2 * (n_src - 1)
    phase = idx % period
    return np.where(phase < n_src, phase, period - phase)


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


@dataclass
class FrameBatch:
    """Consecutive output frames, modified in place by :meth:`Engine.process`."""

    frames: np.ndarray  # (n, frame_bytes) uint8, yuv420p
    out_index: np.ndarray  # (n,) output frame numbers
    src_index: np.ndarray  # (n,) avatar frame numbers
    width: int
    height: int
    boxes: np.ndarray | None = None  # (n, 4) float32 face boxes [x, y, w, h]
    buffer: np.ndarray | None = None  # the pooled buffer ``frames`` is a view of
    from_decoder: bool = True

    def __len__(self) -> int:
        return len(self.out_index)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y, U, V)`` views of the batch (writes go into the frames)."""
        y, u, v = yuv_planes(self.frames, self.width, self.height)
        return y, u, v


class _FrameStore:
    """Decoded avatar frames kept for the backward passes.

    Either the last ``keep_last`` frames only (a ring: enough when the audio is a little longer
    than the avatar), or all of them: in memory up to ``memory_limit`` bytes, then in a raw
    temporary file in ``spill_dir``.
    """

    def __init__(
        self,
        frame_bytes: int,
        memory_limit: int,
        spill_dir: Path,
        keep_last: int | None = None,
    ) -> None:
        self.frame_bytes = frame_bytes
        self.memory_limit = memory_limit
        self.spill_dir = spill_dir
        self.count = 0
        self._ring = np.empty((keep_last, frame_bytes), dtype=np.uint8) if keep_last else None
        self._chunks: list[np.ndarray] = []
        self._where: list[tuple[int, int]] = []
        self._file: tempfile._TemporaryFileWrapper[bytes] | None = None

    def append(self, frames: np.ndarray) -> None:
        if self._ring is not None:
            size = len(self._ring)
            first = self.count + max(0, len(frames) - size)
            for k, frame in enumerate(frames[-size:]):
                self._ring[(first + k) % size] = frame
            self.count += len(frames)
            return
        if self._file is None and (self.count + len(frames)) * self.frame_bytes > self.memory_limit:
            self._spill()
        if self._file is not None:
            self._write(frames)
        else:
            self._chunks.append(frames.copy())
            self._where.extend((len(self._chunks) - 1, i) for i in range(len(frames)))
        self.count += len(frames)

    def skip(self, n: int) -> None:
        """Count ``n`` frames without keeping them (a ring would evict them anyway)."""
        if self._ring is None:
            raise ValueError("only a ring store may skip frames")
        self.count += n

    def holds(self, indices: np.ndarray) -> bool:
        """Whether every frame in ``indices`` can be read back."""
        if not len(indices):
            return True
        low = self.count - len(self._ring) if self._ring is not None else 0
        return bool(indices.min() >= low and indices.max() < self.count)

    def _spill(self) -> None:
        self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by close()
            prefix=".frames.", suffix=".raw.part", dir=self.spill_dir
        )
        for chunk in self._chunks:
            self._write(chunk)
        self._chunks, self._where = [], []

    def _write(self, frames: np.ndarray) -> None:
        assert self._file is not None
        view = memoryview(np.ascontiguousarray(frames)).cast("B")
        fd, pos = self._file.fileno(), 0
        while pos < len(view):
            pos += os.write(fd, view[pos:])

    def read(self, indices: np.ndarray, out: np.ndarray) -> None:
        """Copy frames ``indices`` into the rows of ``out``."""
        if self._ring is not None:
            out[: len(indices)] = self._ring[np.asarray(indices) % len(self._ring)]
            return
        if self._file is None:
            for row, i in enumerate(indices):
                c, k = self._where[int(i)]
                out[row] = self._chunks[c][k]
            return
        fd = self._file.fileno()
        for row, i in enumerate(indices):
            got = os.preadv(fd, [memoryview(out[row])], int(i) * self.frame_bytes)
            if got != self.frame_bytes:
                raise InferenceError("The temporary frame store is damaged (short read).")

    def close(self) -> None:
        self._ring = None
        self._chunks, self._where = [], []
        if self._file is not None:
            self._file.close()
            self._file = None


_END = object()


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
        total = plan.n_frames
        every = max(1, round(plan.fps_value / self.detections_per_second))
        max_pending = max(2, math.ceil(every / plan.batch_size) + 1)
        pool_size = max_pending + 4
        reader = FrameReader(plan.avatar, fps=plan.fps, info=plan.avatar_info)
        frame_bytes = reader.frame_bytes
        pool: queue.Queue[np.ndarray] = queue.Queue()
        for _ in range(pool_size):
            pool.put(np.empty((plan.batch_size, frame_bytes), dtype=np.uint8))
        decoded: queue.Queue[object] = queue.Queue()
        to_write: queue.Queue[object] = queue.Queue()
        stop = threading.Event()
        errors: list[BaseException] = []
        # Keep frames for the backward passes only when they may be needed: all of them when
        # the audio is clearly longer than the avatar, else the last ~2 s (cheap, and enough
        # when the container's frame count was a little off).
        est_src = plan.avatar_info.frame_count or 0
        ring = int(2 * plan.fps_value) + plan.batch_size
        if total - est_src > ring // 2:
            keep_last: int | None = 0  # everything
        elif total - est_src > -ring:
            keep_last = ring
        else:
            keep_last = None  # no store
        # A ring only needs the frames near the announced end: copying earlier ones is waste.
        skip_until = max(0, est_src - 2 * ring) if keep_last else 0

        def take_buffer() -> np.ndarray | None:
            while not stop.is_set():
                with contextlib.suppress(queue.Empty):
                    return pool.get(timeout=0.1)
            return None

        def new_store(last: int | None) -> _FrameStore:
            return _FrameStore(frame_bytes, self.store_memory_limit, plan.out.parent, last)

        def source() -> None:
            store: _FrameStore | None = None
            try:
                done = 0
                store = new_store(keep_last or None) if keep_last is not None else None
                with reader:
                    while done < total:
                        buf = take_buffer()
                        if buf is None:
                            return
                        want = min(plan.batch_size, total - done)
                        n = reader.read_into(buf[:want])
                        if n:
                            if store is not None and done + n > skip_until:
                                store.append(buf[:n])
                            elif store is not None:
                                store.skip(n)
                            idx = np.arange(done, done + n)
                            batch = FrameBatch(buf[:n], idx, idx, plan.width, plan.height)
                            batch.buffer = buf
                            decoded.put(batch)
                            done += n
                        else:
                            pool.put(buf)
                        if n < want:
                            break
                    n_src = reader.frames_read
                if done >= total:
                    return
                if n_src == 0:
                    raise MediaError(
                        "No frame could be decoded from the avatar video.", path=str(plan.avatar)
                    )
                needed = pingpong_indices(np.arange(done, total), n_src)
                if store is None or not store.holds(needed):
                    # Frame count under-announced by the container: decode again, keep all.
                    if store is not None:
                        store.close()
                    store = new_store(None)
                    with FrameReader(plan.avatar, fps=plan.fps, info=plan.avatar_info) as again:
                        for chunk in again.batches(plan.batch_size):
                            if stop.is_set():
                                return
                            store.append(chunk)
                    n_src = store.count
                    needed = pingpong_indices(np.arange(done, total), n_src)
                decoded.put(("source_end", n_src))
                for start in range(0, len(needed), plan.batch_size):
                    buf = take_buffer()
                    if buf is None:
                        return
                    src_idx = needed[start : start + plan.batch_size]
                    m = len(src_idx)
                    store.read(src_idx, buf)
                    out_idx = np.arange(done + start, done + start + m)
                    batch = FrameBatch(buf[:m], out_idx, src_idx, plan.width, plan.height)
                    batch.buffer, batch.from_decoder = buf, False
                    decoded.put(batch)
            except BaseException as exc:
                errors.append(exc)
            finally:
                if store is not None:
                    store.close()
                decoded.put(_END)  # always: the main thread waits for it

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

        def sink() -> None:
            try:
                while True:
                    item = to_write.get()
                    if item is _END:
                        return
                    assert isinstance(item, FrameBatch)
                    if not errors and not stop.is_set():
                        writer.write(item.frames)
                    assert item.buffer is not None
                    pool.put(item.buffer)
            except BaseException as exc:
                errors.append(exc)
                stop.set()
                # Keep recycling buffers so the source thread cannot block forever.
                while True:
                    item = to_write.get()
                    if item is _END:
                        return
                    if isinstance(item, FrameBatch) and item.buffer is not None:
                        pool.put(item.buffer)

        source_thread = threading.Thread(target=source, name="render-source", daemon=True)
        sink_thread = threading.Thread(target=sink, name="render-sink", daemon=True)
        source_thread.start()
        sink_thread.start()
        finished = False
        try:
            written = self._main_loop(
                plan, decoded, to_write, errors, every, max_pending, progress, should_cancel
            )
            to_write.put(_END)
            sink_thread.join()
            if errors:
                raise errors[0]
            writer.close()
            finished = True
            return written
        finally:
            stop.set()
            if not finished:
                writer.abort()
                to_write.put(_END)
            # Unblock and reap both threads (they only wait on queues with timeouts).
            source_thread.join(timeout=30)
            sink_thread.join(timeout=30)

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
            if item is _END:
                ended = True
                track.finished = True
            elif isinstance(item, tuple):  # ("source_end", n_src): all detections are in
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
