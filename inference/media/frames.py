"""Raw frames through ffmpeg pipes: frame geometry, the decoder and the encoder.

Frames travel as raw ``yuv420p`` through pipes (never as per-frame image files). A frame of
``width x height`` is ``width * height * 3 // 2`` bytes: the full-size Y plane followed by the
quarter-size U and V planes. Readers and writers always use even frame sizes: an odd-sized
source is cropped by one pixel row/column (ffmpeg's ``crop`` filter) because x264's yuv420p
needs even dimensions, and cropping never shows a padding border.

The ffmpeg command lines are built by :func:`decode_args` / :func:`encode_args` so that
``bench/render.py`` can time exactly what :class:`FrameReader` / :class:`FrameWriter` run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from inference import ffmpeg_bin
from inference.errors import MediaError
from inference.media.outputs import OutputOptions
from inference.media.probing import MediaInfo, _explain_failure, _input_args, probe

#: Default x264 settings of rendered outputs (also used by ``bench/render.py``).
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 20
DEFAULT_AUDIO_BITRATE = "128k"

_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def even(n: int) -> int:
    """Largest even number <= n (yuv420p and x264 need even frame sizes)."""
    return n - (n % 2)


def frame_size(width: int, height: int) -> int:
    """Bytes of one yuv420p frame of even ``width`` x ``height``."""
    return width * height * 3 // 2


def yuv_planes(frames: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Views ``(Y, U, V)`` of shape ``(n, h, w)``, ``(n, h/2, w/2)`` x2 over ``(n, bytes)`` frames.

    They share memory with ``frames``: writing into a plane changes the frame.
    """
    if frames.ndim != 2 or not frames.flags.c_contiguous:
        raise ValueError("frames must be a C-contiguous (n, frame_bytes) array")  # else copies
    n = frames.shape[0]
    y_size = width * height
    c_size = y_size // 4
    y = frames[:, :y_size].reshape(n, height, width)
    u = frames[:, y_size : y_size + c_size].reshape(n, height // 2, width // 2)
    v = frames[:, y_size + c_size : y_size + 2 * c_size].reshape(n, height // 2, width // 2)
    return y, u, v


def _grow_pipe(fd: int) -> None:
    # A 1 MiB pipe (Linux) moves a 720p frame in one or two wake-ups instead of twenty.
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)


def _read_log(log: IO[bytes]) -> str:
    try:
        log.seek(0)
        return log.read()[-8000:].decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def decode_args(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    *,
    fps: str | None = None,
    source_size: tuple[int, int] | None = None,
) -> list[str]:
    """ffmpeg arguments decoding ``path``'s first video stream to raw yuv420p on stdout.

    ``fps`` (a ratio like "25" or "30000/1001") makes the frame rate constant; a source whose
    size differs from ``width`` x ``height`` (odd sizes) is cropped to it.
    """
    filters = []
    if fps:
        filters.append(f"fps={fps}")
    if source_size and source_size != (width, height):
        filters.append(f"crop={width}:{height}:0:0")
    args = [
        ffmpeg_bin.find_ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        *_input_args(Path(path)),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
    ]
    if filters:
        args += ["-vf", ",".join(filters)]
    return [*args, "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]


class FrameReader:
    """Decode a video's frames as raw yuv420p through an ffmpeg pipe.

    Frames are read straight into caller-provided (or one reused) numpy buffers of shape
    ``(n, frame_bytes)`` with ``readinto``: no per-frame allocation and no copy in Python.
    Use as a context manager; :meth:`close` stops ffmpeg if the caller stops early.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: str | float | None = None,
        info: MediaInfo | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = info or probe(self.path)
        if not self.info.has_video or not self.info.width or not self.info.height:
            raise MediaError("The file has no video stream.", path=str(self.path))
        self.width = even(self.info.width)
        self.height = even(self.info.height)
        if self.width < 2 or self.height < 2:
            raise MediaError("The video is too small (under 2x2 pixels).", path=str(self.path))
        self.frame_bytes = frame_size(self.width, self.height)
        self.fps = str(fps) if fps is not None else None
        self.frames_read = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._eof = False

    def __enter__(self) -> FrameReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self) -> list[str]:
        """The ffmpeg command line this reader runs."""
        return decode_args(
            self.path,
            self.width,
            self.height,
            fps=self.fps,
            source_size=(self.info.width or 0, self.info.height or 0),
        )

    def start(self) -> None:
        """Start ffmpeg (done by ``with`` and by the first read)."""
        if self._proc is not None:
            return
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log
        )
        assert self._proc.stdout is not None
        _grow_pipe(self._proc.stdout.fileno())

    def read_into(self, buf: np.ndarray) -> int:
        """Fill ``buf`` (``(n, frame_bytes)`` uint8, C-contiguous) and return the frames read.

        Fewer than ``n`` frames means the video ended. A trailing partial frame is dropped.
        """
        if buf.ndim != 2 or buf.shape[1] != self.frame_bytes or not buf.flags.c_contiguous:
            raise ValueError(f"buffer must be C-contiguous (n, {self.frame_bytes}) uint8")
        if self._eof:
            return 0
        self.start()
        assert self._proc is not None and self._proc.stdout is not None
        view = memoryview(buf).cast("B")
        total, pos = len(view), 0
        stdout = self._proc.stdout
        while pos < total:
            got = stdout.readinto(view[pos:])
            if not got:
                self._eof = True
                self._finish()
                break
            pos += got
        frames = pos // self.frame_bytes
        self.frames_read += frames
        return frames

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Yield ``(k, frame_bytes)`` views of ONE reused buffer, ``k <= batch_size``.

        Each batch is overwritten by the next one: copy what must outlive an iteration.
        """
        buf = np.empty((batch_size, self.frame_bytes), dtype=np.uint8)
        while True:
            n = self.read_into(buf)
            if n:
                yield buf[:n]
            if n < batch_size:
                return

    def _finish(self) -> None:
        assert self._proc is not None
        code = self._proc.wait()
        if code != 0:
            stderr = _read_log(self._log) if self._log else ""
            err = _explain_failure(stderr, self.path)
            if not self.frames_read:
                raise err
            raise MediaError(
                "The video could not be decoded to the end; it may be truncated or damaged. "
                "Upload it again.",
                path=str(self.path),
                detail=err.detail,
            )

    def close(self) -> None:
        """Stop ffmpeg and release the pipe."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._eof = True


def encode_args(
    out: str | os.PathLike[str],
    width: int,
    height: int,
    fps: str,
    *,
    audio: str | os.PathLike[str] | None = None,
    duration: float | None = None,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    audio_bitrate: str = DEFAULT_AUDIO_BITRATE,
    container: str = "mp4",
    options: OutputOptions | None = None,
) -> list[str]:
    """ffmpeg arguments encoding raw yuv420p frames from stdin (plus ``audio``) into ``out``.

    H.264 (libx264 ``preset``/``crf``) and AAC, ``+faststart`` so players start at once;
    ``duration`` cuts the output to exactly the audio's length. ``options`` (resolution,
    quality, watermark, burned-in subtitles) become a filter graph in this same encode; without
    them, or with ``OutputOptions()``, the command is exactly what it always was.
    """
    graph, extra_inputs = None, []
    if options is not None and not options.is_default:
        crf, preset = options.encoder_settings(crf, preset)
        first_input = 1 if audio is None else 2
        extra_inputs, graph = options.filters(width, height, first_input=first_input)
    args = [
        ffmpeg_bin.find_ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        f"{width}x{height}",
        "-framerate",
        fps,
        "-i",
        "pipe:0",
    ]
    if audio is not None:
        args += _input_args(Path(audio))
    args += extra_inputs
    if graph is not None:
        args += ["-filter_complex", graph, "-map", "[vout]"]
    elif audio is not None:
        args += ["-map", "0:v:0"]
    if audio is not None:
        args += ["-map", "1:a:0"]
    args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if audio is not None:
        args += ["-c:a", "aac", "-b:a", audio_bitrate]
    if duration is not None:
        args += ["-t", f"{duration:.6f}"]
    if container in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    return [*args, "-f", container, str(out)]


def container_for(path: str | os.PathLike[str]) -> str:
    """ffmpeg muxer name for an output path's suffix (mp4 unless .mov/.mkv)."""
    return {".mov": "mov", ".mkv": "matroska"}.get(Path(path).suffix.lower(), "mp4")


# ffmpeg's messages when the output could not be written in full (its exit code may be 0).
_OUTPUT_NOT_WRITTEN = re.compile(
    r"Error writing trailer|Error closing file|No space left on device|Disk quota exceeded"
)


class FrameWriter:
    """Encode raw yuv420p frames written to an ffmpeg stdin pipe, muxing an audio track.

    ``write`` blocks while ffmpeg is busy (natural back-pressure); call :meth:`close` to finish
    the file and check ffmpeg's exit, or :meth:`abort` to kill it.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        width: int,
        height: int,
        fps: str | float,
        *,
        audio: str | os.PathLike[str] | None = None,
        duration: float | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        container: str | None = None,
        options: OutputOptions | None = None,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError("yuv420p frames need even width and height")
        self.out = Path(out)
        self.width, self.height = width, height
        self.frame_bytes = frame_size(width, height)
        self.frames_written = 0
        # Burned-in subtitles are re-wrapped for the output size into a private copy.
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        if options is not None and options.subtitles is not None:
            self._workdir = tempfile.TemporaryDirectory(prefix="heygem-subs-")
            options = options.for_burning(width, height, Path(self._workdir.name))
        self._cmd = encode_args(
            self.out,
            width,
            height,
            str(fps),
            audio=audio,
            duration=duration,
            crf=crf,
            preset=preset,
            container=container or container_for(self.out),
            options=options,
        )
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(
            self._cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log
        )
        assert self._proc.stdin is not None
        _grow_pipe(self._proc.stdin.fileno())
        self._fd = self._proc.stdin.fileno()
        self._satisfied = False

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frames: np.ndarray) -> None:
        """Write ``(n, frame_bytes)`` uint8 frames (any C-contiguous array of whole frames)."""
        view = memoryview(np.ascontiguousarray(frames)).cast("B")
        if len(view) % self.frame_bytes:
            raise ValueError("frames must be whole yuv420p frames of the writer's size")
        if self._satisfied:
            return
        pos = 0
        try:
            while pos < len(view):
                pos += os.write(self._fd, view[pos:])
        except BrokenPipeError as exc:
            if self._proc.wait() == 0:
                # ffmpeg reached the requested duration and finished: later frames are surplus.
                self._satisfied = True
                return
            raise self._failure() from exc
        self.frames_written += len(view) // self.frame_bytes

    def _failure(self) -> MediaError:
        stderr = _read_log(self._log)
        lines = stderr.strip().splitlines()
        # The line that says why the file could not be written (a full disk, say) beats
        # ffmpeg's last line, which may only be the stream it gave up on.
        cause = next((line for line in lines if _OUTPUT_NOT_WRITTEN.search(line)), None)
        return MediaError(
            "Encoding the output video failed: "
            + (cause or (lines[-1] if lines else "ffmpeg stopped")),
            path=str(self.out),
            detail=stderr,
        )

    def close(self) -> None:
        """Finish the file; raise :class:`MediaError` if ffmpeg failed, including when it
        could not write the end of the file: ffmpeg still exits 0 after "Error writing
        trailer" / "Error closing file" (a full disk, for one)."""
        if self._proc.stdin and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        code = self._proc.wait()
        try:
            if code != 0 or _OUTPUT_NOT_WRITTEN.search(_read_log(self._log)):
                raise self._failure()
        finally:
            self._log.close()
            self._drop_workdir()

    def _drop_workdir(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def abort(self) -> None:
        """Kill ffmpeg; the (partial) output file is left for the caller to remove."""
        if self._proc.poll() is None:
            self._proc.kill()
        if self._proc.stdin and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._proc.stdin.close()
        self._proc.wait()
        if not self._log.closed:
            self._log.close()
        self._drop_workdir()
