"""Probing media files: what a file contains, or a clear reason why it cannot be used.

:func:`probe` reads ffprobe's JSON when ffprobe exists and otherwise parses ``ffmpeg -i``
diagnostics (the imageio-ffmpeg wheel ships ffmpeg alone). The helpers that every module
opening an untrusted file shares (the frame pipes, thumbnails, ``inference.audio`` and
``inference.face``) live here as well, so they are defined once: :func:`_input_args` (how an
untrusted file is opened), :func:`_run` (a bounded ffmpeg run) and :func:`_explain_failure`
(ffmpeg's complaint as a message a person can act on).

Every untrusted file is opened with ``-format_whitelist`` (see :data:`ALLOWED_FORMATS`), so an
upload that is really an HLS playlist, a concat list, an image or ANSI art is refused before
ffmpeg follows references inside it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from inference import ffmpeg_bin
from inference.errors import MediaError

#: Demuxers an untrusted input may use (ffmpeg ``-format_whitelist``). "mov" covers
#: mp4/m4a/3gp, "matroska" covers webm.
ALLOWED_FORMATS = (
    "mov,mp4,m4a,3gp,matroska,webm,avi,flv,mpegts,mpeg,asf,wav,w64,mp3,aac,ogg,flac,aiff,caf,amr"
)

#: Video codecs that a demuxer may report but that are not camera video (text art, images).
_NOT_VIDEO_CODECS = frozenset({"ansi", "bintext", "xbin", "idf", "tty"})


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
        raise MediaError(
            "The file does not exist (it may have been removed).", path=str(p), code="missing"
        )
    if not p.is_file():
        raise MediaError("This is not a regular file.", path=str(p), code="not_a_file")
    size = p.stat().st_size
    if size == 0:
        raise MediaError("The file is empty (0 bytes). Upload it again.", path=str(p), code="empty")
    ffprobe = ffmpeg_bin.find_ffprobe()
    info = _probe_with_ffprobe(p, ffprobe, size, timeout) if ffprobe else None
    if info is None:
        info = _probe_with_ffmpeg(p, size, timeout)
    if not info.has_video and not info.has_audio:
        raise MediaError(
            "The file contains no audio or video stream. Upload a video (MP4, MOV, MKV, WebM) "
            "or an audio file (WAV, MP3, M4A, AAC, OGG, FLAC).",
            path=str(p),
            code="no_streams",
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
                code="incomplete",
                params={"expected": info.duration, "measured": measured},
            )
    if not info.duration or info.duration <= 0:
        raise MediaError(
            "The file has no playable duration (it is empty or broken).",
            path=str(p),
            code="no_duration",
        )
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
            code="too_slow",
            params={"seconds": timeout},
        ) from exc


def _explain_failure(stderr: str, path: Path) -> MediaError:
    """Turn ffmpeg's complaint into a message a person can act on."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else ""
    low = text.lower()
    params: dict[str, object] = {}
    if "not on whitelist" in low:
        m = re.search(r"\[([\w,]+) @ [^\]]*\] Format not on whitelist", text)
        kind = f" ({m.group(1)})" if m else ""
        code, params = "unsupported_format", {"format": m.group(1) if m else ""}
        message = (
            f"This kind of file{kind} is not supported. Upload a video (MP4, MOV, MKV, WebM, "
            "AVI) or an audio file (WAV, MP3, M4A, AAC, OGG, FLAC)."
        )
    elif "moov atom not found" in low and _starts_like_mp4(path):
        code = "index_missing"
        message = (
            "The file is incomplete: its MP4/MOV index is missing, which happens when an upload "
            "or a recording was interrupted. Upload the complete file again."
        )
    elif (
        "invalid data found" in low
        or "could not find codec parameters" in low
        or "moov atom not found" in low  # not an MP4 at all, only named like one
    ):
        code = "unreadable"
        message = (
            "The file is not a readable audio or video file (it may be corrupt, or another kind "
            "of file renamed). Upload a video (MP4, MOV, MKV, WebM) or an audio file (WAV, MP3, "
            "M4A, AAC, OGG, FLAC)."
        )
    elif "end of file" in low or "partial file" in low or "truncat" in low:
        code = "truncated"
        message = "The file is truncated (it ends too early). Upload the complete file again."
    elif "permission denied" in low:
        code = "permission_denied"
        message = "The file cannot be read (permission denied)."
    elif "no such file" in low:
        code = "missing"
        message = "The file does not exist (it may have been removed)."
    else:
        code, params = "ffmpeg_failed", {"reason": last or "unknown error"}
        message = f"ffmpeg could not read the file: {last or 'unknown error'}."
    return MediaError(message, path=str(path), detail=text[-2000:], code=code, params=params)


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
