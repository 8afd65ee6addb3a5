"""Finished files: one-pass checksums, atomic outputs, and what the final encode may add.

:class:`AtomicOutput` makes an output appear under its final name only when complete, and
:func:`hash_file` / :class:`HashingWriter` take size, SHA-256 and CRC-32 without a second read.
:class:`RenderResult` describes a render. :class:`OutputOptions` (resolution, quality preset,
watermark, burned-in subtitles) says how the render's single encode should differ from the
source; it becomes an ffmpeg filter graph in that same encode (:meth:`OutputOptions.filters`),
never a second pass. Nothing here runs ffmpeg but :func:`ffmpeg_filters`, which asks it once
which filters it has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import secrets
import subprocess
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from inference.errors import InferenceError

#: Suffix of temporary outputs, so a sweeper can recognise files left by a killed worker.
TEMP_SUFFIX = ".part"


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


# --------------------------------------------------------------------------- output options

#: Output resolutions: the short side of the frame in pixels (None: the avatar's own size).
#: A portrait 1080x1920 avatar at "720p" becomes 720x1280; the aspect is kept and both sides
#: are even. A smaller source is scaled up: the name is the size every output of a batch gets.
RESOLUTIONS: dict[str, int | None] = {"source": None, "1080p": 1080, "720p": 720, "480p": 480}
#: Quality presets: libx264 ``(crf, preset)``. "standard" keeps the encoder's defaults
#: (``DEFAULT_CRF`` / ``DEFAULT_PRESET`` of :mod:`inference.media.frames`).
QUALITY_PRESETS: dict[str, tuple[int, str] | None] = {
    "draft": (28, "superfast"),
    "standard": None,
    "high": (17, "medium"),
}
WATERMARK_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
#: Largest watermark image accepted, pixels per side.
MAX_WATERMARK_SIDE = 4096
#: Font of burned-in subtitles (Debian's fonts-noto-cjk); it covers Latin text too.
SUBTITLE_FONT = "Noto Sans CJK SC"
# Where Debian and others install CJK fonts; libass also asks fontconfig by name.
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
# ffmpeg converts SRT to ASS with this script height: style sizes are in 1/288 of the frame.
_ASS_PLAY_RES_Y = 288
# Subtitle font size (libass sizes a font by its ascent + descent, about 1.45 em for Noto
# CJK, so a Chinese character is ~0.7 of it) as a fraction of the frame's short side, and the
# smallest it may shrink to so that the longest line fits 90% of the width.
_SUBTITLE_SIZE = 0.07
_SUBTITLE_MIN_SIZE = 0.04
# Advance of one display column (a Latin letter on average; a CJK character is two) as a
# fraction of the font size.
_COLUMN_ADVANCE = 0.4


class OutputOptionError(InferenceError):
    """An output option cannot be used (a bad name, a watermark that is not a PNG ...)."""

    def __init__(
        self, message: str, *, code: str, params: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


@dataclasses.dataclass(frozen=True)
class Watermark:
    """A PNG drawn over every frame: in ``corner``, ``opacity`` times its own alpha, as wide as
    ``scale`` times the frame's short side, ``margin`` (same unit) away from the edges."""

    path: Path
    corner: str = "bottom-right"
    opacity: float = 0.8
    scale: float = 0.2
    margin: float = 0.03

    def __post_init__(self) -> None:
        if self.corner not in WATERMARK_CORNERS:
            raise OutputOptionError(
                f"The watermark corner must be one of {', '.join(WATERMARK_CORNERS)}; "
                f"got {self.corner!r}.",
                code="bad_corner",
                params={"corner": self.corner},
            )
        for name, value, low, high in (
            ("opacity", self.opacity, 0.0, 1.0),
            ("scale", self.scale, 0.01, 1.0),
            ("margin", self.margin, 0.0, 0.25),
        ):
            if not (isinstance(value, int | float) and low <= value <= high):
                raise OutputOptionError(
                    f"The watermark {name} must be between {low:g} and {high:g}; got {value!r}.",
                    code=f"bad_watermark_{name}",
                    params={"value": value, "low": low, "high": high},
                )


@dataclasses.dataclass(frozen=True)
class BurnedSubtitles:
    """An SRT file drawn into the frames (libass through ffmpeg's ``subtitles`` filter).

    ``font`` is a font family fontconfig knows (default: Noto Sans CJK SC, which has Chinese
    and Latin letters); ``fonts_dir`` an extra folder libass searches (default: the folder of
    an installed Noto CJK font). Text is white with a dark outline, centred at the bottom.
    """

    path: Path
    font: str = SUBTITLE_FONT
    fonts_dir: Path | None = None


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """How the final encode of a render differs from today's default (all optional).

    ``resolution``: a key of :data:`RESOLUTIONS`; ``quality``: a key of
    :data:`QUALITY_PRESETS` (None: the encoder's own crf/preset, as given by the caller);
    ``watermark`` and ``subtitles``: drawn over the frames. ``OutputOptions()`` changes nothing.
    """

    resolution: str = "source"
    quality: str | None = None
    watermark: Watermark | None = None
    subtitles: BurnedSubtitles | None = None

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise OutputOptionError(
                f"The resolution must be one of {', '.join(RESOLUTIONS)}; got {self.resolution!r}.",
                code="bad_resolution",
                params={"resolution": self.resolution},
            )
        if self.quality is not None and self.quality not in QUALITY_PRESETS:
            raise OutputOptionError(
                f"The quality must be one of {', '.join(QUALITY_PRESETS)}; got {self.quality!r}.",
                code="bad_quality",
                params={"quality": self.quality},
            )

    @property
    def is_default(self) -> bool:
        """Whether the encode stays exactly as without options."""
        return (
            RESOLUTIONS[self.resolution] is None
            and QUALITY_PRESETS.get(self.quality or "standard") is None
            and self.watermark is None
            and self.subtitles is None
        )

    def encoder_settings(self, crf: int, preset: str) -> tuple[int, str]:
        """The libx264 ``(crf, preset)`` to use, given the caller's."""
        chosen = QUALITY_PRESETS.get(self.quality or "standard")
        return chosen if chosen is not None else (crf, preset)

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The frame size of the output for an (even) ``width`` x ``height`` render."""
        return scaled_size(width, height, self.resolution)

    def check(self) -> None:
        """Open the files the options name and refuse what cannot be used (a watermark that
        is not a PNG, a subtitle file with errors), before any frame is rendered."""
        if self.watermark is not None:
            watermark_size(self.watermark.path)
        if self.subtitles is not None:
            _subtitle_lines(self.subtitles.path)
            if "subtitles" not in ffmpeg_filters():
                raise OutputOptionError(
                    "This server's ffmpeg cannot burn subtitles in (it was built without "
                    "libass). Install the system's ffmpeg (apt-get install ffmpeg), or turn "
                    "burned-in subtitles off.",
                    code="no_subtitles_filter",
                )

    def for_burning(self, width: int, height: int, folder: Path) -> OutputOptions:
        """These options with the subtitles read (and checked), every line too wide for the
        output re-wrapped (:func:`burn_line_width`: libass breaks Latin lines at spaces but
        never Chinese ones) and written as UTF-8 SRT into ``folder``; the encode of a
        ``width`` x ``height`` render burns that copy, a file this library wrote."""
        if self.subtitles is None:
            return self
        from inference.subtitles import read_srt, rewrap, write_srt

        out_w, out_h = self.output_size(width, height)
        cues = rewrap(read_srt(self.subtitles.path), burn_line_width(out_w, out_h))
        copy = write_srt(cues, Path(folder) / "burn.srt")
        return dataclasses.replace(self, subtitles=dataclasses.replace(self.subtitles, path=copy))

    def filters(self, width: int, height: int, *, first_input: int) -> tuple[list[str], str | None]:
        """ffmpeg input arguments and the ``-filter_complex`` graph (None: no filtering) that
        turn the raw ``width`` x ``height`` frames of input 0 into ``[vout]``.

        Extra inputs (the watermark) are numbered from ``first_input``. Order: scale to the
        output size, overlay the watermark, draw the subtitles (over the watermark, so a
        watermark in a bottom corner never hides words), then yuv420p for x264.
        """
        out_w, out_h = self.output_size(width, height)
        inputs: list[str] = []
        steps: list[str] = []
        label = "[0:v]"
        if (out_w, out_h) != (width, height):
            steps.append(f"{label}scale={out_w}:{out_h}:flags=bicubic[scaled]")
            label = "[scaled]"
        if self.watermark is not None:
            mark = self.watermark
            mark_w, mark_h = watermark_size(mark.path)
            short = min(out_w, out_h)
            m = round(mark.margin * short)
            w = mark.scale * short
            h = w * mark_h / mark_w
            fit = min(1.0, (out_w - 2 * m) / w, (out_h - 2 * m) / h)  # a tall logo, say
            w, h = max(2, round(w * fit)), max(2, round(h * fit))
            x = m if mark.corner.endswith("left") else out_w - w - m
            y = m if mark.corner.startswith("top") else out_h - h - m
            inputs += ["-f", "png_pipe", "-i", "file:" + str(Path(mark.path).resolve())]
            alpha = f",colorchannelmixer=aa={mark.opacity:.3f}" if mark.opacity < 1 else ""
            steps.append(f"[{first_input}:v]format=rgba,scale={w}:{h}{alpha}[mark]")
            steps.append(f"{label}[mark]overlay=x={x}:y={y}:format=auto[marked]")
            label = "[marked]"
        if self.subtitles is not None:
            steps.append(f"{label}{_subtitles_filter(self.subtitles, out_w, out_h)}[subbed]")
            label = "[subbed]"
        if not steps:
            return [], None
        steps.append(f"{label}format=yuv420p[vout]")
        return inputs, ";".join(steps)


def scaled_size(width: int, height: int, resolution: str) -> tuple[int, int]:
    """``width`` x ``height`` scaled so the short side is ``RESOLUTIONS[resolution]`` pixels,
    keeping the aspect, both sides even (unchanged for "source")."""
    if resolution not in RESOLUTIONS:
        raise OutputOptionError(
            f"The resolution must be one of {', '.join(RESOLUTIONS)}; got {resolution!r}.",
            code="bad_resolution",
            params={"resolution": resolution},
        )
    short = RESOLUTIONS[resolution]
    if short is None or min(width, height) == short:
        return width, height
    factor = short / min(width, height)

    def side(n: int) -> int:
        return max(2, 2 * round(n * factor / 2))

    return side(width), side(height)


def watermark_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of a watermark PNG, or :class:`OutputOptionError` when the file is
    not a PNG image (or is too large)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as image:
            kind, size = image.format, image.size
            image.verify()
    except FileNotFoundError as exc:
        raise OutputOptionError(
            "The watermark image is missing; upload it again.", code="watermark_missing"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise OutputOptionError(
            "The watermark is not a readable image; upload a PNG (with transparency).",
            code="watermark_not_png",
        ) from exc
    if kind != "PNG":
        raise OutputOptionError(
            f"The watermark must be a PNG image (this one is {kind}); export it as PNG.",
            code="watermark_not_png",
            params={"format": kind},
        )
    if max(size) > MAX_WATERMARK_SIDE or min(size) < 1:
        raise OutputOptionError(
            f"The watermark is {size[0]}x{size[1]} pixels; use an image of at most "
            f"{MAX_WATERMARK_SIDE} pixels per side.",
            code="watermark_too_large",
            params={"width": size[0], "height": size[1], "limit": MAX_WATERMARK_SIDE},
        )
    return size


@functools.lru_cache(maxsize=4)
def _filters_of(ffmpeg: str) -> frozenset[str]:
    try:
        proc = subprocess.run(
            [ffmpeg, "-hide_banner", "-filters"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    return frozenset(parts[1] for line in lines if len(parts := line.split()) > 2)


def ffmpeg_filters() -> frozenset[str]:
    """Names of the filters the ffmpeg in use has (imageio-ffmpeg's lacks ``subtitles``)."""
    from inference import ffmpeg_bin

    return _filters_of(ffmpeg_bin.find_ffmpeg())


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """An installed Noto Sans CJK font file (Debian's fonts-noto-cjk), or None."""
    for folder in _FONT_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            found = sorted(root.rglob("NotoSansCJK*"))
            if found:
                return found[0]
    return None


def burn_line_width(width: int, height: int) -> int:
    """Display columns (a Chinese character is two) that fit on one burned-in subtitle line
    of a ``width`` x ``height`` output at the normal text size: wrap subtitles to this
    (:func:`inference.subtitles.wrap_text`) before burning them into a narrow frame."""
    font_px = _SUBTITLE_SIZE * min(width, height)
    return max(8, int(0.9 * width / (_COLUMN_ADVANCE * font_px)))


def _subtitle_lines(path: Path) -> list[str]:
    from inference.subtitles import read_srt

    return [line for cue in read_srt(path) for line in cue.text.splitlines()]


def _filter_value(value: str) -> str:
    """Escape ``value`` for a filter option inside a filter graph: first for the option
    parser (``\\ ' :``), then for the graph parser (``\\ ' [ ] , ;``)."""
    for ch in "\\':":
        value = value.replace(ch, "\\" + ch)
    out = []
    for ch in value:
        out.append("\\" + ch if ch in "\\'[],;" else ch)
    return "".join(out)


def _subtitles_filter(subs: BurnedSubtitles, width: int, height: int) -> str:
    from inference.subtitles import display_width

    lines = _subtitle_lines(Path(subs.path))
    short = min(width, height)
    widest = max((display_width(line) for line in lines), default=1)
    font_px = _SUBTITLE_SIZE * short
    fit_px = 0.9 * width / (_COLUMN_ADVANCE * max(widest, 1))
    font_px = max(_SUBTITLE_MIN_SIZE * short, min(font_px, fit_px))
    unit = height / _ASS_PLAY_RES_Y  # output pixels per ASS style unit
    style = ",".join(
        [
            f"FontName={subs.font}",
            f"FontSize={font_px / unit:.2f}",
            "PrimaryColour=&H00FFFFFF",
            "OutlineColour=&H80000000",
            "BorderStyle=1",
            f"Outline={max(1.0, 0.05 * font_px) / unit:.2f}",
            "Shadow=0",
            f"MarginV={0.05 * height / unit:.0f}",
        ]
    )
    fonts_dir = subs.fonts_dir
    if fonts_dir is None:
        font = find_cjk_font()
        fonts_dir = font.parent if font is not None else None
    args = [f"filename={_filter_value(str(Path(subs.path).resolve()))}", "charenc=UTF-8"]
    if fonts_dir is not None:
        args.append(f"fontsdir={_filter_value(str(fonts_dir))}")
    args.append(f"force_style={_filter_value(style)}")
    return "subtitles=" + ":".join(args)
