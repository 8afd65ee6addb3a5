"""The render pipeline's two helper threads and what they share with the main thread.

::

    FrameSource (thread)  ffmpeg decoder --readinto--> pooled buffers --> queue
    FrameStage (thread)   optional: work on each fresh batch (face tracking) --> ``decoded``
    main thread           ``decoded`` --> engine.process --> ``to_write`` queue
    FrameSink (thread)    ``to_write`` --write--> ffmpeg encoder; buffers go back to the pool

:class:`RenderThreads` owns the queues, the :class:`BufferPool`, the stop event and the error
list, starts the threads and shuts them down. The main thread's own work (``Engine.process``,
progress, cancellation) and the stage's work (face tracking) are in
:mod:`inference.engines.base`; this module knows nothing about engines or faces, so the
threading can be read and changed on its own.

Protocol of ``decoded``: :class:`FrameBatch` items in output order, then (only when frames are
replayed) ``(SOURCE_END, n_src)`` once the decoder has finished, and always :data:`END` last.
``to_write`` carries processed batches, then :data:`END`. A thread's exception goes to the
shared ``errors`` list (the main thread raises the first one) and sets the stop event.

**Covering the audio.** Avatar frames play forward, then backward, then forward ... until the
audio ends (:func:`pingpong_indices`). The first forward pass streams from the decoder. When the
audio is longer than the avatar, that pass also keeps the decoded frames for the backward
passes (:class:`FrameStore`): in memory when they fit in the engine's ``store_memory_limit``
(512 MiB: ~15 s of 720p), otherwise in a raw temporary file next to the output, read back frame
by frame (the page cache does the rest), so memory stays bounded whatever the lengths. Decoding
backward with seeks instead would decode each GOP many times over.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import InferenceError, MediaError
from inference.media.frames import FrameReader, FrameWriter, yuv_planes

if TYPE_CHECKING:
    from inference.engines.base import RenderPlan

#: Last item of both queues: whoever reads it stops reading.
END = object()
#: Tag of the source's ``(SOURCE_END, n_src)`` item: the decoder is done (every source frame
#: was queued, so every one has its landmarks).
SOURCE_END = "source_end"


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


@dataclass
class FrameBatch:
    """Consecutive output frames, modified in place by :meth:`Engine.process`."""

    frames: np.ndarray  # (n, frame_bytes) uint8, yuv420p
    out_index: np.ndarray  # (n,) output frame numbers
    src_index: np.ndarray  # (n,) avatar frame numbers
    width: int
    height: int
    #: ``(n, 468, 2)`` float32: each frame's face mesh points in frame pixels (set by the
    #: main thread before ``Engine.process``).
    landmarks: np.ndarray | None = None
    boxes: np.ndarray | None = None  # (n, 4) float32 face boxes [x, y, w, h], from landmarks
    buffer: np.ndarray | None = None  # the pooled buffer ``frames`` is a view of
    from_decoder: bool = True

    def __len__(self) -> int:
        return len(self.out_index)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y, U, V)`` views of the batch (writes go into the frames)."""
        y, u, v = yuv_planes(self.frames, self.width, self.height)
        return y, u, v


class FrameStore:
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
        """Keep ``frames`` (copied: the caller's buffer is reused) as the next frames."""
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
        """Drop every kept frame and delete the temporary file (safe to call twice)."""
        self._ring = None
        self._chunks, self._where = [], []
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class StorePolicy:
    """Which decoded frames the forward pass keeps for the backward passes.

    ``keep_last`` is None for no store, 0 for every frame, ``n`` for a ring of the last ``n``;
    a ring counts the frames before ``skip_until`` without copying them.
    """

    keep_last: int | None
    skip_until: int

    @classmethod
    def for_plan(cls, plan: RenderPlan) -> StorePolicy:
        """The policy for a render, from the avatar's announced frame count."""
        total = plan.n_frames
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
        return cls(keep_last, skip_until)


class BufferPool:
    """A fixed set of ``(batch_size, frame_bytes)`` uint8 buffers that the threads pass around.

    The source takes one per batch and the sink gives it back once written, so memory is
    ``count * batch_size * frame_bytes`` and the decoder runs at most ``count`` batches ahead.
    """

    def __init__(
        self, count: int, batch_size: int, frame_bytes: int, stop: threading.Event
    ) -> None:
        self._free: queue.Queue[np.ndarray] = queue.Queue()
        for _ in range(count):
            self._free.put(np.empty((batch_size, frame_bytes), dtype=np.uint8))
        self._stop = stop

    def take(self) -> np.ndarray | None:
        """A free buffer, waiting for one if need be; None once the render is stopping."""
        # Short timeouts: a stop must be noticed even while every buffer is in flight.
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                return self._free.get(timeout=0.1)
        return None

    def give_back(self, buf: np.ndarray) -> None:
        """Return a buffer taken with :meth:`take`."""
        self._free.put(buf)


class FrameSource:
    """The source thread: avatar frames for output frames ``0 .. plan.n_frames - 1``, in order.

    Streams the decoder first (keeping frames as :class:`StorePolicy` says), then, if the
    avatar is shorter than the audio, replays kept frames in ping-pong order. Every batch is in
    a pooled buffer; see the module docstring for what goes on ``decoded``.
    """

    def __init__(
        self,
        plan: RenderPlan,
        reader: FrameReader,
        pool: BufferPool,
        decoded: queue.Queue[object],
        stop: threading.Event,
        errors: list[BaseException],
        memory_limit: int,
    ) -> None:
        self.plan = plan
        self.reader = reader
        self.pool = pool
        self.decoded = decoded
        self.stop = stop
        self.errors = errors
        self.memory_limit = memory_limit
        self.policy = StorePolicy.for_plan(plan)
        self._store: FrameStore | None = None

    def run(self) -> None:
        """Thread body: never raises (errors go to ``errors``), always ends with :data:`END`."""
        try:
            keep_last = self.policy.keep_last
            self._store = self._new_store(keep_last or None) if keep_last is not None else None
            forward = self._stream_decoder()
            if forward is None:  # stopping
                return
            done, n_src = forward
            if done < self.plan.n_frames:
                self._replay(done, n_src)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            if self._store is not None:
                self._store.close()
            self.decoded.put(END)  # always: the main thread waits for it

    def _new_store(self, last: int | None) -> FrameStore:
        return FrameStore(self.reader.frame_bytes, self.memory_limit, self.plan.out.parent, last)

    def _stream_decoder(self) -> tuple[int, int] | None:
        """Queue decoded frames until the output is covered or the avatar ends.

        Returns ``(frames queued, frames decoded)``, or None when the render is stopping.
        """
        plan, total, done = self.plan, self.plan.n_frames, 0
        with self.reader:
            while done < total:
                buf = self.pool.take()
                if buf is None:
                    return None
                want = min(plan.batch_size, total - done)
                n = self.reader.read_into(buf[:want])
                if n:
                    self._keep(buf[:n], done)
                    idx = np.arange(done, done + n)
                    batch = FrameBatch(buf[:n], idx, idx, plan.width, plan.height)
                    batch.buffer = buf
                    self.decoded.put(batch)
                    done += n
                else:
                    self.pool.give_back(buf)
                if n < want:
                    break
            n_src = self.reader.frames_read
        return done, n_src

    def _keep(self, frames: np.ndarray, first: int) -> None:
        """Offer decoded frames ``first ..`` to the store (if any)."""
        if self._store is not None and first + len(frames) > self.policy.skip_until:
            self._store.append(frames)
        elif self._store is not None:
            self._store.skip(len(frames))

    def _replay(self, done: int, n_src: int) -> None:
        """Queue output frames ``done ..`` from the kept frames, in ping-pong order."""
        plan = self.plan
        if n_src == 0:
            raise MediaError(
                "No frame could be decoded from the avatar video.", path=str(plan.avatar)
            )
        needed = pingpong_indices(np.arange(done, plan.n_frames), n_src)
        if self._store is None or not self._store.holds(needed):
            # Frame count under-announced by the container: decode again, keep all.
            again = self._decode_all_again()
            if again is None:  # stopping
                return
            n_src = again
            needed = pingpong_indices(np.arange(done, plan.n_frames), n_src)
        self.decoded.put((SOURCE_END, n_src))
        store = self._store
        assert store is not None
        for start in range(0, len(needed), plan.batch_size):
            buf = self.pool.take()
            if buf is None:
                return
            src_idx = needed[start : start + plan.batch_size]
            m = len(src_idx)
            store.read(src_idx, buf)
            out_idx = np.arange(done + start, done + start + m)
            batch = FrameBatch(buf[:m], out_idx, src_idx, plan.width, plan.height)
            batch.buffer, batch.from_decoder = buf, False
            self.decoded.put(batch)

    def _decode_all_again(self) -> int | None:
        """Replace the store by one holding every avatar frame and return how many there are;
        None when the render is stopping."""
        if self._store is not None:
            self._store.close()
        self._store = store = self._new_store(None)
        plan = self.plan
        with FrameReader(plan.avatar, fps=plan.fps, info=plan.avatar_info) as again:
            for chunk in again.batches(plan.batch_size):
                if self.stop.is_set():
                    return None
                store.append(chunk)
        return store.count


class FrameStage:
    """A thread between the source and the main thread: ``work(batch)`` on every batch fresh
    from the decoder (face tracking), everything passed on in order, :data:`END` last.

    Work that must see the frames in decoding order but not wait for the main thread goes
    here, so it runs alongside both the decoder and the engine. After an error (recorded in
    ``errors``, which the main thread checks on every item) items are passed on untouched.
    """

    def __init__(
        self,
        work: Callable[[FrameBatch], None],
        inbox: queue.Queue[object],
        outbox: queue.Queue[object],
        stop: threading.Event,
        errors: list[BaseException],
    ) -> None:
        self.work = work
        self.inbox = inbox
        self.outbox = outbox
        self.stop = stop
        self.errors = errors

    def run(self) -> None:
        """Thread body: never raises (errors go to ``errors`` and set the stop event)."""
        failed = False
        while True:
            item = self.inbox.get()
            if (
                not failed
                and isinstance(item, FrameBatch)
                and item.from_decoder
                and not self.stop.is_set()
            ):
                try:
                    self.work(item)
                except BaseException as exc:
                    failed = True
                    self.errors.append(exc)
                    self.stop.set()
            self.outbox.put(item)
            if item is END:
                return


class FrameSink:
    """The writer thread: feeds processed batches to the encoder and recycles their buffers.

    After an error (its own or another thread's) or a stop it writes nothing more but keeps
    recycling buffers until :data:`END`, so the source thread never waits for a buffer forever.
    """

    def __init__(
        self,
        writer: FrameWriter,
        pool: BufferPool,
        to_write: queue.Queue[object],
        stop: threading.Event,
        errors: list[BaseException],
    ) -> None:
        self.writer = writer
        self.pool = pool
        self.to_write = to_write
        self.stop = stop
        self.errors = errors

    def run(self) -> None:
        """Thread body: never raises (errors go to ``errors`` and set the stop event)."""
        try:
            while True:
                item = self.to_write.get()
                if item is END:
                    return
                assert isinstance(item, FrameBatch)
                if not self.errors and not self.stop.is_set():
                    self.writer.write(item.frames)
                assert item.buffer is not None
                self.pool.give_back(item.buffer)
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
            self._recycle_until_end()

    def _recycle_until_end(self) -> None:
        # Keep recycling buffers so the source thread cannot block forever.
        while True:
            item = self.to_write.get()
            if item is END:
                return
            if isinstance(item, FrameBatch) and item.buffer is not None:
                self.pool.give_back(item.buffer)


class RenderThreads:
    """The source and sink threads of one render, with the queues and pool they share.

    ::

        threads = RenderThreads(plan, reader, pool_size=..., memory_limit=...)
        threads.start(writer)
        try:
            ...  # main thread: threads.decoded.get() -> process -> threads.to_write.put(batch)
            threads.finish()          # all batches queued: write them, close the output
            finished = True
        finally:
            threads.shutdown(finished)
    """

    def __init__(
        self,
        plan: RenderPlan,
        reader: FrameReader,
        *,
        pool_size: int,
        memory_limit: int,
        stage: Callable[[FrameBatch], None] | None = None,
    ) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.pool = BufferPool(pool_size, plan.batch_size, reader.frame_bytes, self.stop)
        #: What the main thread reads (through the stage thread when there is one).
        self.decoded: queue.Queue[object] = queue.Queue()
        self.to_write: queue.Queue[object] = queue.Queue()
        fresh: queue.Queue[object] = queue.Queue() if stage is not None else self.decoded
        self.source = FrameSource(
            plan, reader, self.pool, fresh, self.stop, self.errors, memory_limit
        )
        self.stage = (
            FrameStage(stage, fresh, self.decoded, self.stop, self.errors)
            if stage is not None
            else None
        )
        self.writer: FrameWriter | None = None
        self._source_thread: threading.Thread | None = None
        self._sink_thread: threading.Thread | None = None
        self._stage_thread: threading.Thread | None = None

    def start(self, writer: FrameWriter) -> None:
        """Start decoding, and encoding into ``writer`` (which :meth:`finish` closes)."""
        self.writer = writer
        sink = FrameSink(writer, self.pool, self.to_write, self.stop, self.errors)
        self._source_thread = threading.Thread(
            target=self.source.run, name="render-source", daemon=True
        )
        self._sink_thread = threading.Thread(target=sink.run, name="render-sink", daemon=True)
        if self.stage is not None:
            self._stage_thread = threading.Thread(
                target=self.stage.run, name="render-stage", daemon=True
            )
            self._stage_thread.start()
        self._source_thread.start()
        self._sink_thread.start()

    def finish(self) -> None:
        """After the last batch was queued: wait for the sink, then finish the output file.

        Raises the first error any thread met (or the writer's, when closing fails).
        """
        assert self.writer is not None and self._sink_thread is not None
        self.to_write.put(END)
        self._sink_thread.join()
        if self.errors:
            raise self.errors[0]
        self.writer.close()

    def shutdown(self, finished: bool) -> None:
        """Stop and reap both threads; unless ``finished``, kill the encoder first."""
        assert self.writer is not None
        assert self._source_thread is not None and self._sink_thread is not None
        self.stop.set()
        if not finished:
            self.writer.abort()
            self.to_write.put(END)
        # Unblock and reap both threads (they only wait on queues with timeouts).
        self._source_thread.join(timeout=30)
        if self._stage_thread is not None:
            self._stage_thread.join(timeout=30)
        self._sink_thread.join(timeout=30)
