"""Media I/O through ffmpeg: probing, frame pipes, thumbnails, atomic hashed outputs.

Frames travel as raw ``yuv420p`` through pipes (never as per-frame image files). A frame of
``width x height`` is ``width * height * 3 // 2`` bytes: the full-size Y plane followed by the
quarter-size U and V planes. Readers and writers always use even frame sizes: an odd-sized
source is cropped by one pixel row/column (ffmpeg's ``crop`` filter) because x264's yuv420p
needs even dimensions, and cropping never shows a padding border.

Every untrusted file is opened with ``-format_whitelist`` (see :data:`ALLOWED_FORMATS`), so an
upload that is really an HLS playlist, a concat list, an image or ANSI art is refused before
ffmpeg follows references inside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import subprocess
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np

from inference import ffmpeg_bin
from inference.errors import MediaError

#: Demuxers an untrusted input may use (ffmpeg ``-format_whitelist``). "mov" covers
#: mp4/m4a/3gp, "matroska" covers webm.
ALLOWED_FORMATS = (
    "mov,mp4,m4a,3gp,matroska,webm,avi,flv,mpegts,mpeg,asf,wav,w64,mp3,aac,ogg,flac,aiff,caf,amr"
)

#: Video codecs that a demuxer may report but that are not camera video (text art, images).
_NOT_VIDEO_CODECS = frozenset({"ansi", "bintext", "xbin", "idf", "tty"})

#: Suffix of temporary outputs, so a sweeper can recognise files left by a killed worker.
TEMP_SUFFIX = ".part"

#: Default x264 settings of rendered outputs (also used by ``bench/render.py``).
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 20
DEFAULT_AUDIO_BITRATE = "128k"

_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


# --------------------------------------------------------------------------- probing


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What ffprobe (or ``ffmpeg -i``) says about a file.

    ``width``/``height`` are display dimensions (after the rotation a phone recorded), ``fps`` is
    the average frame rate and ``frame_rate`` the same as an exact ratio ("30000/1001").
    ``has_video`` is false for cover art in audio files; ``frame_count`` is an estimate
    (``duration * fps`` unless the container states it).
    """

    path: str
    format_name: str
    duration: float
    size_bytes: int
    has_video: bool
    has_audio: bool
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_rate: str | None = None
    frame_count: int | None = None
    pix_fmt: str | None = None
    rotation: int = 0
    sample_rate: int | None = None
    channels: int | None = None
    prober: str = "ffprobe"


def probe(path: str | os.PathLike[str], *, verify: bool = False, timeout: float = 60) -> MediaInfo:
    """Describe a media file, or raise :class:`MediaError` saying why it cannot be used.

    Uses ffprobe's JSON output when ffprobe exists, else parses ``ffmpeg -i`` diagnostics
    (the imageio-ffmpeg wheel ships ffmpeg alone). With ``verify=True`` the whole file is also
    demuxed once (packets copied to the null muxer, nothing decoded: roughly the cost of reading
    the file) so a truncated upload whose header is intact is caught too.
    """
    p = Path(path)
    if not p.exists():
        raise MediaError("The file does not exist (it may have been removed).", path=str(p))
    if not p.is_file():
        raise MediaError("This is not a regular file.", path=str(p))
    size = p.stat().st_size
    if size == 0:
        raise MediaError("The file is empty (0 bytes). Upload it again.", path=str(p))
    ffprobe = ffmpeg_bin.find_ffprobe()
    info = _probe_with_ffprobe(p, ffprobe, size, timeout) if ffprobe else None
    if info is None:
        info = _probe_with_ffmpeg(p, size, timeout)
    if not info.has_video and not info.has_audio:
        raise MediaError(
            "The file contains no audio or video stream. Upload a video (MP4, MOV, MKV, WebM) "
            "or an audio file (WAV, MP3, M4A, AAC, OGG, FLAC).",
            path=str(p),
        )
    if verify or not info.duration:
        measured = _demux_duration(p, timeout=max(timeout, 120))
        if not info.duration:
            info = _with_duration(info, measured)
        elif measured < info.duration * 0.9 - 0.5:
            raise MediaError(
                f"The file is incomplete: it should last {info.duration:.1f} s but its data "
                f"ends at {measured:.1f} s (an interrupted upload or copy). Upload the complete "
                "file again.",
                path=str(p),
            )
    if not info.duration or info.duration <= 0:
        raise MediaError("The file has no playable duration (it is empty or broken).", path=str(p))
    return info


def _with_duration(info: MediaInfo, duration: float) -> MediaInfo:
    frames = info.frame_count
    if info.has_video and info.fps and not frames:
        frames = max(1, round(duration * info.fps))
    return dataclasses.replace(info, duration=duration, frame_count=frames)


def _input_args(path: Path) -> list[str]:
    # "file:" stops a crafted name ("concat:...", "http://...") from choosing a protocol.
    return ["-format_whitelist", ALLOWED_FORMATS, "-i", "file:" + str(path.resolve())]


def _run(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaError(
            f"Reading the file took longer than {timeout:.0f} s; it is probably damaged.",
            detail=str(exc),
        ) from exc


def _explain_failure(stderr: str, path: Path) -> MediaError:
    """Turn ffmpeg's complaint into a message a person can act on."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else ""
    low = text.lower()
    if "not on whitelist" in low:
        m = re.search(r"\[([\w,]+) @ [^\]]*\] Format not on whitelist", text)
        kind = f" ({m.group(1)})" if m else ""
        message = (
            f"This kind of file{kind} is not supported. Upload a video (MP4, MOV, MKV, WebM, "
            "AVI) or an audio file (WAV, MP3, M4A, AAC, OGG, FLAC)."
        )
    elif "moov atom not found" in low and _starts_like_mp4(path):
        message = (
            "The file is incomplete: its MP4/MOV index is missing, which happens when an upload "
            "or a recording was interrupted. Upload the complete file again."
        )
    elif (
        "invalid data found" in low
        or "could not find codec parameters" in low
        or "moov atom not found" in low  # not an MP4 at all, only named like one
    ):
        message = (
            "The file is not a readable audio or video file (it may be corrupt, or another kind "
            "of file renamed). Upload a video (MP4, MOV, MKV, WebM) or an audio file (WAV, MP3, "
            "M4A, AAC, OGG, FLAC)."
        )
    elif "end of file" in low or "partial file" in low or "truncat" in low:
        message = "The file is truncated (it ends too early). Upload the complete file again."
    elif "permission denied" in low:
        message = "The file cannot be read (permission denied)."
    elif "no such file" in low:
        message = "The file does not exist (it may have been removed)."
    else:
        message = f"ffmpeg could not read the file: {last or 'unknown error'}."
    return MediaError(message, path=str(path), detail=text[-2000:])


def _starts_like_mp4(path: Path) -> bool:
    """Whether the file begins with an ISO-BMFF box (so "moov atom not found" = truncated)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"mdat", b"moov", b"free", b"wide", b"skip")


def _ratio(value: str | None) -> Fraction | None:
    if not value or value in ("0/0", "N/A"):
        return None
    try:
        r = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None
    return r if r > 0 else None


def _float(value: object) -> float | None:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _probe_with_ffprobe(path: Path, ffprobe: str, size: int, timeout: float) -> MediaInfo | None:
    cmd = [
        ffprobe,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        *_input_args(path),
    ]
    proc = _run(cmd, timeout)
    if proc.returncode != 0:
        raise _explain_failure(proc.stderr.decode("utf-8", "replace"), path)
    try:
        data = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        return None  # let the ffmpeg parser have a go
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
            and s.get("codec_name") not in _NOT_VIDEO_CODECS
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _float(fmt.get("duration"))
    if duration is None:
        durations = [_float(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d), default=0.0)
    info: dict[str, object] = {}
    if video is not None:
        rate = _ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate"))
        rotation = 0
        for side in video.get("side_data_list") or []:
            if "rotation" in side:
                rotation = round(_float(side["rotation"]) or 0)
        if not rotation and (video.get("tags") or {}).get("rotate"):
            rotation = int(_float(video["tags"]["rotate"]) or 0)
        width, height = video.get("width"), video.get("height")
        if width and height and rotation % 180 != 0:
            width, height = height, width
        frames = video.get("nb_frames")
        frame_count = int(frames) if frames and str(frames).isdigit() else None
        if not frame_count and rate and duration:
            frame_count = max(1, round(duration * float(rate)))
        info.update(
            video_codec=video.get("codec_name"),
            width=width,
            height=height,
            fps=float(rate) if rate else None,
            frame_rate=f"{rate.numerator}/{rate.denominator}" if rate else None,
            frame_count=frame_count,
            pix_fmt=video.get("pix_fmt"),
            rotation=rotation % 360,
        )
    if audio is not None:
        info.update(
            audio_codec=audio.get("codec_name"),
            sample_rate=int(_float(audio.get("sample_rate")) or 0) or None,
            channels=audio.get("channels"),
        )
    return MediaInfo(
        path=str(path),
        format_name=str(fmt.get("format_name", "")),
        duration=duration or 0.0,
        size_bytes=size,
        has_video=video is not None,
        has_audio=audio is not None,
        prober="ffprobe",
        **info,  # type: ignore[arg-type]
    )


_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from ", re.M)
_DURATION_RE = re.compile(r"Duration: (?P<d>N/A|\d+:\d+:\d+(?:\.\d+)?)")
_STREAM_RE = re.compile(
    r"^\s*Stream #0:\d+(?:\[0x[0-9a-fA-F]+\])?(?:\([^)]*\))?: (?P<kind>\w+): (?P<rest>.*)$"
)
_ROTATION_RE = re.compile(r"displaymatrix: rotation of (-?[\d.]+) degrees|rotate\s*:\s*(-?\d+)")
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses or brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _parse_rate(token: str, unit: str) -> Fraction | None:
    m = re.fullmatch(rf"([\d.]+)(k?) {unit}", token)
    if not m:
        return None
    value = float(m.group(1)) * (1000 if m.group(2) else 1)
    if value <= 0:
        return None
    # "29.97 fps" means 30000/1001; limit_denominator finds such ratios.
    return Fraction(value).limit_denominator(1001)


def _parse_clock(text: str) -> float | None:
    if text == "N/A":
        return None
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _probe_with_ffmpeg(path: Path, size: int, timeout: float) -> MediaInfo:
    cmd = [ffmpeg_bin.find_ffmpeg(), "-hide_banner", "-nostdin", *_input_args(path)]
    stderr = _run(cmd, timeout).stderr.decode("utf-8", "replace")
    head = _INPUT_RE.search(stderr)
    if head is None:  # ffmpeg always "fails" here (no output file); no Input line = real failure
        raise _explain_failure(stderr, path)
    lines = stderr[head.start() :].splitlines()
    duration_match = _DURATION_RE.search(stderr)
    duration = _parse_clock(duration_match.group("d")) if duration_match else None
    streams: list[tuple[str, str, list[str]]] = []  # kind, description, following lines
    for line in lines[1:]:
        m = _STREAM_RE.match(line)
        if m:
            streams.append((m.group("kind"), m.group("rest"), []))
        elif streams and line.startswith("    "):
            streams[-1][2].append(line)
        elif not line.startswith(" "):
            break
    info: dict[str, object] = {}
    has_video = has_audio = False
    for kind, rest, extra in streams:
        tokens = _split_top_level(rest)
        codec = tokens[0].split()[0] if tokens else None
        if kind == "Video" and not has_video:
            if "(attached pic)" in rest or codec in _NOT_VIDEO_CODECS:
                continue
            has_video = True
            width = height = None
            fps = tbr = None
            pix_fmt = None
            for i, tok in enumerate(tokens[1:], start=1):
                dims = re.match(r"(\d+)x(\d+)\b", tok)
                if dims and width is None:
                    width, height = int(dims.group(1)), int(dims.group(2))
                elif i == 1:
                    pix_fmt = re.split(r"[ (]", tok)[0]
                fps = fps or _parse_rate(tok, "fps")
                tbr = tbr or _parse_rate(tok, "tbr")
            rate = fps or tbr
            rotation = 0
            for line in extra:
                rm = _ROTATION_RE.search(line)
                if rm:
                    rotation = round(float(rm.group(1) or rm.group(2)))
            if width and height and rotation % 180 != 0:
                width, height = height, width
            info.update(
                video_codec=codec,
                width=width,
                height=height,
                fps=float(rate) if rate else None,
                frame_rate=f"{rate.numerator}/{rate.denominator}" if rate else None,
                frame_count=max(1, round(duration * float(rate))) if rate and duration else None,
                pix_fmt=pix_fmt,
                rotation=rotation % 360,
            )
        elif kind == "Audio" and not has_audio:
            has_audio = True
            rate_m = re.search(r"(\d+) Hz", rest)
            channels = None
            for tok in tokens[1:]:
                layout = tok.split("(")[0].strip()
                if layout in _CHANNELS:
                    channels = _CHANNELS[layout]
                    break
                cm = re.fullmatch(r"(\d+) channels(?: \(.*\))?", tok)
                if cm:
                    channels = int(cm.group(1))
                    break
            info.update(
                audio_codec=codec,
                sample_rate=int(rate_m.group(1)) if rate_m else None,
                channels=channels,
            )
    return MediaInfo(
        path=str(path),
        format_name=head.group("fmt"),
        duration=duration or 0.0,
        size_bytes=size,
        has_video=has_video,
        has_audio=has_audio,
        prober="ffmpeg",
        **info,  # type: ignore[arg-type]
    )


def _demux_duration(path: Path, timeout: float) -> float:
    """Read every packet once (no decoding) and return where the data really ends, in seconds.

    Raises :class:`MediaError` when ffmpeg reports damaged or missing data on the way.
    """
    cmd = [
        ffmpeg_bin.find_ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        *_input_args(path),
        "-map",
        "0:v?",
        "-map",
        "0:a?",
        "-c",
        "copy",
        "-f",
        "null",
        "-progress",
        "pipe:1",
        "-",
    ]
    proc = _run(cmd, timeout)
    stderr = proc.stderr.decode("utf-8", "replace")
    # Only what means "data missing or damaged": other error-level chatter (odd tags, ...)
    # must not refuse a file that plays.
    if proc.returncode != 0 or re.search(r"partial file|invalid data|corrupt", stderr, re.I):
        raise _explain_failure(stderr or "partial file", path)
    times = re.findall(rb"out_time_us=(\d+)", proc.stdout)
    return int(times[-1]) / 1e6 if times else 0.0


# --------------------------------------------------------------------------- raw frames


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
) -> list[str]:
    """ffmpeg arguments encoding raw yuv420p frames from stdin (plus ``audio``) into ``out``.

    H.264 (libx264 ``preset``/``crf``) and AAC, ``+faststart`` so players start at once;
    ``duration`` cuts the output to exactly the audio's length.
    """
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
        args += [*_input_args(Path(audio)), "-map", "0:v:0", "-map", "1:a:0"]
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
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError("yuv420p frames need even width and height")
        self.out = Path(out)
        self.width, self.height = width, height
        self.frame_bytes = frame_size(width, height)
        self.frames_written = 0
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
        return MediaError(
            "Encoding the output video failed: "
            + (stderr.strip().splitlines()[-1] if stderr.strip() else "ffmpeg stopped"),
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


# --------------------------------------------------------------------------- thumbnails


def make_thumbnail(
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    width: int = 320,
    *,
    at: float | None = None,
    info: MediaInfo | None = None,
) -> Path:
    """Save one frame of the video, ``width`` pixels wide, as JPEG/PNG/WebP (by suffix).

    The frame (1 s in, or mid-way through shorter clips, or ``at`` seconds) comes through an
    ffmpeg pipe as RGB and is written with Pillow, atomically. Returns ``out_path``.
    """
    from PIL import Image

    src = Path(video_path)
    info = info or probe(src)
    if not info.has_video or not info.width or not info.height:
        raise MediaError("The file has no video stream to take a thumbnail from.", path=str(src))
    width = max(2, even(int(width)))
    height = max(2, even(round(width * info.height / info.width)))
    t = at if at is not None else min(1.0, info.duration / 2)
    size = width * height * 3
    data = b""
    for start in (t, 0.0):
        cmd = [
            ffmpeg_bin.find_ffmpeg(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-ss",
            f"{max(0.0, start):.3f}",
            *_input_args(src),
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-vf",
            f"scale={width}:{height}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ]
        proc = _run(cmd, timeout=60)
        data = proc.stdout
        if len(data) >= size:
            break
    if len(data) < size:
        raise MediaError("No frame could be decoded for the thumbnail.", path=str(src))
    image = Image.frombuffer("RGB", (width, height), data[:size], "raw", "RGB", 0, 1)
    out = Path(out_path)
    fmt = {".png": "PNG", ".webp": "WEBP"}.get(out.suffix.lower(), "JPEG")
    with AtomicOutput(out) as tmp:
        image.save(tmp.path, format=fmt, **({"quality": 85} if fmt != "PNG" else {}))
        tmp.commit()
    return out


# --------------------------------------------------------------------------- outputs


@dataclasses.dataclass(frozen=True)
class FileDigest:
    """Size and checksums of a file, taken in one pass."""

    bytes: int
    sha256: str
    crc32: int


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """A finished render: where it is, what it weighs and its checksums, what it contains."""

    path: Path
    bytes: int
    sha256: str
    crc32: int
    duration: float
    width: int
    height: int
    frames: int
    fps: float
    engine: str = ""
    device: str = ""


class HashingWriter:
    """A binary file wrapper that updates SHA-256 and CRC-32 with every ``write``.

    For streams written from Python (e.g. an upload being saved), so the digests cost no
    second read. ``digest()`` returns a :class:`FileDigest` of everything written.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._sha = hashlib.sha256()
        self._crc = 0
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` to the wrapped file and fold it into the checksums."""
        self._sha.update(data)
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        return self.raw.write(data)

    def digest(self) -> FileDigest:
        """Size, SHA-256 (hex) and CRC-32 of the bytes written so far."""
        return FileDigest(self._size, self._sha.hexdigest(), self._crc)


def hash_file(path: str | os.PathLike[str], *, fsync: bool = False) -> FileDigest:
    """Size, SHA-256 and CRC-32 of a file in ONE read pass (1 MiB chunks, bounded memory).

    With ``fsync=True`` the file is also flushed to disk in the same visit.
    """
    sha = hashlib.sha256()
    crc = 0
    size = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += n
        if fsync:
            os.fsync(fh.fileno())
    return FileDigest(size, sha.hexdigest(), crc)


class AtomicOutput:
    """Write to a temporary name in the destination folder, then rename into place.

    ::

        with AtomicOutput(out) as tmp:
            produce(tmp.path)          # ffmpeg, Pillow, ... write the file
            digest = tmp.commit()      # hash + fsync in one pass, then os.replace

    Leaving the block without :meth:`commit` (an error, a cancel) deletes the temporary file,
    so no half-written output ever carries the final name. Temporary names are
    ``.<name>.<random>.part`` so a sweeper can remove those a killed worker left behind.

    The checksums cannot be taken as ffmpeg writes, because the mp4 muxer rewrites the file
    for ``+faststart`` (moving the index to the front). They are taken in one read of the
    finished temp file (still in the page cache) that also fsyncs it, before the rename; the
    final file is never read again (exports use the recorded CRC-32/SHA-256).
    """

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        self.path = self.final.parent / f".{self.final.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        self.committed = False

    def __enter__(self) -> AtomicOutput:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def commit(self) -> FileDigest:
        """Checksum and fsync the temp file in one pass, rename it to the final name."""
        digest = hash_file(self.path, fsync=True)
        os.replace(self.path, self.final)
        self.committed = True
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return digest
