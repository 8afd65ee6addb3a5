"""Subtitles: timed cues, SRT and WebVTT writers, an SRT/VTT reader that explains its refusals.

A :class:`Cue` is a span of time and the text shown during it. Cues come from speech synthesis
(one per sentence, :func:`cues_from_timings` cuts long ones) or from an SRT file a user uploads
(:func:`parse_srt`, which reports every problem with its line number). :func:`format_srt` /
:func:`format_vtt` write them; lines are wrapped by :func:`wrap_text`, which counts CJK
characters as two columns and breaks Chinese text between characters (never before a closing
mark like the ideographic full stop) and Latin text at spaces.

Plain library: no Django, no ffmpeg.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from inference.errors import InferenceError

#: Columns per subtitle line (a CJK character takes two): ~21 Chinese characters or ~42 Latin
#: ones, the usual broadcast limits.
DEFAULT_LINE_WIDTH = 42
#: Lines per cue; longer text is split into several cues (:func:`cues_from_timings`).
DEFAULT_MAX_LINES = 2
#: Largest subtitle file accepted (a two-hour film's SRT is ~100 KB).
MAX_SUBTITLE_BYTES = 2 * 1024 * 1024
#: Most cues a file may hold.
MAX_CUES = 10000
#: Errors listed before the rest are summed up as "... and N more".
MAX_REPORTED_ERRORS = 10

# Kinsoku: no line may start with a closing mark, none may end with an opening one.
_NO_LINE_START = set("，。、；：！？）》」』】〕〉”’…—·,.;:!?)]}%")
_NO_LINE_END = set("（《「『【〔〈“‘([{")
# Where a line break reads best: after a clause or sentence mark.
_CLAUSE_END = set("，。、；：！？,.;:!?")


class SubtitleError(InferenceError):
    """A subtitle file cannot be used; ``errors`` lists ``(line number, problem)`` pairs
    (line 0: the file as a whole)."""

    code = "subtitles_invalid"

    def __init__(self, errors: Sequence[tuple[int, str]], *, summary: str | None = None) -> None:
        self.errors = list(errors)
        self.params = {"errors": self.errors}
        shown = [f"line {line}: {problem}" if line else problem for line, problem in errors]
        more = len(shown) - MAX_REPORTED_ERRORS
        shown = shown[:MAX_REPORTED_ERRORS] + ([f"... and {more} more"] if more > 0 else [])
        head = summary or "The subtitle file cannot be used"
        super().__init__(head + ": " + "; ".join(shown) + ".")


@dataclasses.dataclass(frozen=True)
class Cue:
    """Text shown from ``start`` to ``end`` (seconds); lines are separated by ``\\n``."""

    start: float
    end: float
    text: str


# --------------------------------------------------------------------------- text width


def char_width(ch: str) -> int:
    """Columns a character takes on screen: 2 for CJK (wide/full-width), 0 for combining
    marks, else 1."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on screen (see :func:`char_width`)."""
    return sum(char_width(ch) for ch in text)


def _is_wide(ch: str) -> bool:
    return char_width(ch) == 2


def _tokens(text: str) -> list[str]:
    """Break opportunities: each wide character alone, Latin words with their trailing
    space, punctuation glued to the token before it (so it never starts a line)."""
    tokens: list[str] = []
    for piece in re.findall(r"\s+|[^\s]", text):
        if piece.isspace():
            if tokens:
                tokens[-1] += " "
            continue
        prev = tokens[-1] if tokens else ""
        glue = prev and (
            piece in _NO_LINE_START
            or prev[-1] in _NO_LINE_END
            # a Latin letter/digit right after another one: same word
            or (not prev[-1].isspace() and not _is_wide(prev[-1]) and not _is_wide(piece))
        )
        if glue:
            tokens[-1] += piece
        else:
            tokens.append(piece)
    return tokens


def _width(tokens: list[str]) -> int:
    return display_width("".join(tokens).rstrip())


def _greedy(tokens: list[str], width: int, *, phrases: bool = False) -> list[str]:
    """Fill lines up to ``width``. With ``phrases``, a line that must break moves its tail
    after the last clause mark (comma, full stop ...) in its last third to the next line."""
    lines: list[str] = []
    line: list[str] = []
    for tok in tokens:
        if line and _width([*line, tok]) > width:
            cut = len(line)
            for i in range(len(line) - 1, 0, -1) if phrases else ():
                if _width(line[:i]) < width * 2 / 3:
                    break
                if line[i - 1].rstrip()[-1:] in _CLAUSE_END:
                    cut = i
                    break
            lines.append("".join(line[:cut]).rstrip())
            line = line[cut:]
        while display_width(tok.rstrip()) > width:  # a single token wider than a line
            cut, used = 0, 0
            for i, ch in enumerate(tok):
                if used + char_width(ch) > width:
                    break
                used += char_width(ch)
                cut = i + 1
            if line:
                lines.append("".join(line).rstrip())
                line = []
            lines.append(tok[: max(cut, 1)])
            tok = tok[max(cut, 1) :]
        line.append(tok)
    if "".join(line).strip():
        lines.append("".join(line).rstrip())
    return lines


def _wrap_cost(lines: list[str]) -> int:
    widths = [display_width(line) for line in lines]
    mid_phrase = sum(_is_wide(line[-1]) and line[-1] not in _CLAUSE_END for line in lines[:-1])
    return max(widths) - min(widths) + 12 * mid_phrase


def wrap_text(text: str, width: int = DEFAULT_LINE_WIDTH) -> list[str]:
    """Lines of at most ``width`` columns, as even in length as the breaks allow.

    Chinese/Japanese text breaks between characters, Latin text at spaces; punctuation stays
    with the word before it. Existing line breaks are kept.
    """
    if width < 2:
        raise ValueError("width must be at least 2 columns")
    out: list[str] = []
    for paragraph in text.splitlines():
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        tokens = _tokens(paragraph)
        lines = _greedy(tokens, width)
        if len(lines) > 1:
            # Balance: of the widths that need no more lines, the one with the most even
            # lines (no orphan word on the last one), counting a break inside a Chinese phrase
            # (not after a clause mark) as six characters of unevenness.
            target = max(2, math.ceil(display_width(paragraph) / len(lines)))
            candidates = [
                _greedy(tokens, w, phrases=phrases)
                for w in range(target, width + 1)
                for phrases in (False, True)
            ]
            lines = min((c for c in candidates if len(c) == len(lines)), key=_wrap_cost)
        out.extend(lines)
    return out


# --------------------------------------------------------------------------- cues


class Timed(Protocol):
    """Anything with a text and its start and end in seconds (a sentence timing)."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


def cues_from_timings(
    timings: Iterable[Timed],
    *,
    line_width: int = DEFAULT_LINE_WIDTH,
    max_lines: int = DEFAULT_MAX_LINES,
) -> list[Cue]:
    """Cues from timed sentences (anything with ``text``, ``start`` and ``end``, such as
    :class:`inference.tts.SentenceTiming`).

    Each sentence is wrapped to ``line_width``; one that needs more than ``max_lines`` lines is
    shown as several cues in turn (cut after clause marks where whole clauses fit, else between
    lines), its time shared in proportion to their widths.
    """
    cues: list[Cue] = []
    for item in timings:
        text, start, end = str(item.text), float(item.start), float(item.end)
        groups = _cue_groups(text, line_width, max_lines)
        if not groups or end <= start:
            continue
        widths = [sum(display_width(line) for line in group) for group in groups]
        total = sum(widths) or 1
        t = start
        for group, w in zip(groups, widths, strict=True):
            t_end = end if group is groups[-1] else t + (end - start) * w / total
            cues.append(Cue(round(t, 3), round(t_end, 3), "\n".join(group)))
            t = t_end
    return cues


_CLAUSES = re.compile(r"[^，、；：,;:。！？!?]*[，、；：,;:。！？!?]*\s*")


def _cue_groups(text: str, line_width: int, max_lines: int) -> list[list[str]]:
    """``text`` as groups of at most ``max_lines`` wrapped lines, one group per cue."""
    lines = wrap_text(text, line_width)
    if len(lines) <= max_lines:
        return [lines] if lines else []
    pieces: list[str] = []
    for clause in (c for c in _CLAUSES.findall(text) if c.strip()):
        joined = pieces[-1] + clause if pieces else clause
        if pieces and len(wrap_text(joined, line_width)) <= max_lines:
            pieces[-1] = joined
        else:
            pieces.append(clause)
    groups = []
    for piece in pieces:
        wrapped = wrap_text(piece, line_width)
        groups += [wrapped[i : i + max_lines] for i in range(0, len(wrapped), max_lines)]
    return groups


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _check_cue(cue: Cue) -> None:
    if not (math.isfinite(cue.start) and math.isfinite(cue.end)) or cue.start < 0:
        raise ValueError(f"cue times must be finite and not negative: {cue!r}")
    if cue.end <= cue.start:
        raise ValueError(f"a cue must end after it starts: {cue!r}")


def _lines(text: str) -> list[str]:
    # A blank line would end the cue early in both formats.
    return [line.strip() for line in text.splitlines() if line.strip()]


def format_srt(cues: Iterable[Cue]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm`` times, a blank line after each."""
    blocks = []
    for n, cue in enumerate(cues, start=1):
        _check_cue(cue)
        lines = "\n".join(_lines(cue.text))
        blocks.append(f"{n}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{lines}\n")
    return "\n".join(blocks)


_VTT_TAG = re.compile(r"</?(?:i|b|u)>", re.I)


def _vtt_text(line: str) -> str:
    """Escape ``&``, ``<`` and ``>`` except in the tags both formats share (<i>, <b>, <u>)."""
    line = re.sub(r"</?font[^>]*>", "", line, flags=re.I)
    out, pos = [], 0
    for m in _VTT_TAG.finditer(line):
        out.append(_vtt_escape(line[pos : m.start()]))
        out.append(m.group(0).lower())
        pos = m.end()
    out.append(_vtt_escape(line[pos:]))
    return "".join(out)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text (for the page's ``<track>``): ``WEBVTT`` header, ``HH:MM:SS.mmm`` times."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        _check_cue(cue)
        lines = "\n".join(_vtt_text(line) for line in _lines(cue.text))
        blocks.append(f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{lines}\n")
    return "\n".join(blocks)


def write_srt(cues: Iterable[Cue], path: str | os.PathLike[str]) -> Path:
    """Write cues as a UTF-8 SRT file (no BOM, ``\\n`` line ends); returns the path."""
    out = Path(path)
    out.write_text(format_srt(cues), encoding="utf-8", newline="\n")
    return out


def write_vtt(cues: Iterable[Cue], path: str | os.PathLike[str]) -> Path:
    """Write cues as a UTF-8 WebVTT file; returns the path."""
    out = Path(path)
    out.write_text(format_vtt(cues), encoding="utf-8", newline="\n")
    return out


# --------------------------------------------------------------------------- reading

_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_SRT_EXAMPLE = "00:00:01,000 --> 00:00:03,500"


def decode_subtitle_bytes(data: bytes) -> str:
    """Text of a subtitle file: UTF-8 with or without a BOM, anything else refused clearly."""
    if len(data) > MAX_SUBTITLE_BYTES:
        raise _too_big(len(data))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        problem = (
            "the file is saved as UTF-16; save it as UTF-8 (e.g. 'UTF-8' in Notepad's Save As "
            "dialog) and upload it again"
        )
        raise SubtitleError([(1, problem)])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problem = (
            "this is not UTF-8 text (perhaps GBK or Latin-1); save the file as UTF-8 and "
            "upload it again"
        )
        raise SubtitleError([(line, problem)]) from exc


def _too_big(size: int) -> SubtitleError:
    limit = MAX_SUBTITLE_BYTES / 1e6
    return SubtitleError(
        [(0, f"the file is {size / 1e6:.1f} MB; subtitle files may be at most {limit:.0f} MB")]
    )


def _seconds(groups: Sequence[str | None]) -> float:
    h, m, s, frac = groups
    if int(m) >= 60 or int(s) >= 60:
        raise ValueError("minutes and seconds must be below 60")
    ms = int(frac.ljust(3, "0")) if frac else 0  # type: ignore[union-attr]
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + ms / 1000


def _blocks(lines: list[str], first: int) -> Iterable[tuple[int, list[str]]]:
    """Groups of non-blank lines with the 1-based number of their first line."""
    block: list[str] = []
    start = first
    for i, line in enumerate(lines[first - 1 :], start=first):
        if line.strip():
            if not block:
                start = i
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _parse_timing(line: str, lineno: int, errors: list[tuple[int, str]]) -> tuple[float, float]:
    m = _TIMING.match(line)
    if m is None:
        found = line.strip()[:60]
        errors.append((lineno, f"expected a timing line like '{_SRT_EXAMPLE}', found '{found}'"))
        return -1.0, -1.0
    try:
        start, end = _seconds(m.groups()[:4]), _seconds(m.groups()[4:])
    except ValueError as exc:
        errors.append((lineno, f"impossible time ({exc})"))
        return -1.0, -1.0
    if end <= start:
        errors.append((lineno, "the cue ends before (or when) it starts"))
    return start, end


def _finish(
    cues: list[tuple[int, Cue]],
    errors: list[tuple[int, str]],
    duration: float | None,
    kind: str,
) -> list[Cue]:
    if len(cues) > MAX_CUES:
        errors.append((0, f"the file holds {len(cues)} cues; at most {MAX_CUES} are accepted"))
    if duration is not None:
        for lineno, cue in cues:
            if cue.start >= duration:
                at = _clock(cue.start, ".")
                problem = f"the cue starts at {at} but the audio lasts only {duration:.1f} s"
                errors.append((lineno, problem))
    if not cues and not errors:
        errors.append((0, "the file holds no subtitles"))
    if errors:
        raise SubtitleError(errors, summary=f"The {kind} file cannot be used")
    # Players show cues by time, whatever their order in the file.
    return sorted((cue for _, cue in cues), key=lambda c: (c.start, c.end))


def parse_srt(data: bytes | str, *, duration: float | None = None) -> list[Cue]:
    """Cues of a SubRip file, or :class:`SubtitleError` listing every problem by line.

    Accepts UTF-8 with or without a BOM, ``\\r\\n`` or ``\\n``, ``,`` or ``.`` before the
    milliseconds, missing hours (``01:02,500``) and cue numbers that skip. Refuses a timing
    line that does not parse, a cue that ends before it starts, a cue without text, a block
    without a timing line, text in another encoding, and (with ``duration``, seconds) a cue
    starting after the audio ends. Cues are returned in time order.
    """
    text = decode_subtitle_bytes(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    errors: list[tuple[int, str]] = []
    cues: list[tuple[int, Cue]] = []
    for start_line, block in _blocks(lines, 1):
        head = block[0].strip()
        offset = 0
        if "-->" not in head:
            if not head.isdigit():
                errors.append((start_line, f"expected a cue number, found '{head[:60]}'"))
                continue
            offset = 1
        if offset >= len(block):
            errors.append((start_line, "a cue number with no timing line after it"))
            continue
        lineno = start_line + offset
        start, end = _parse_timing(block[offset], lineno, errors)
        body = [line.strip() for line in block[offset + 1 :]]
        if "-->" in " ".join(body):
            bad = start_line + offset + 1 + next(i for i, b in enumerate(body) if "-->" in b)
            problem = "a timing line inside a cue's text: a blank line is missing between cues"
            errors.append((bad, problem))
            continue
        if not body:
            errors.append((lineno, "the cue has no text"))
            continue
        if start >= 0 and end > start:
            cues.append((lineno, Cue(start, end, "\n".join(body))))
    return _finish(cues, errors, duration, "SRT")


def parse_vtt(data: bytes | str, *, duration: float | None = None) -> list[Cue]:
    """Cues of a WebVTT file (NOTE, STYLE and REGION blocks skipped, cue settings ignored,
    ``&amp; &lt; &gt;`` unescaped), or :class:`SubtitleError` listing every problem by line."""
    text = decode_subtitle_bytes(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise SubtitleError([(1, "a WebVTT file starts with the line 'WEBVTT'")])
    errors: list[tuple[int, str]] = []
    cues: list[tuple[int, Cue]] = []
    header = True
    for start_line, block in _blocks(lines, 1):
        if header:  # the WEBVTT line and its header block
            header = False
            continue
        first = block[0].strip()
        if first.startswith(("NOTE", "STYLE", "REGION")):
            continue
        offset = 0 if "-->" in first else 1
        if offset >= len(block):
            errors.append((start_line, "a cue identifier with no timing line after it"))
            continue
        lineno = start_line + offset
        start, end = _parse_timing(block[offset], lineno, errors)
        body = [
            line.strip().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            for line in block[offset + 1 :]
        ]
        if not body:
            errors.append((lineno, "the cue has no text"))
            continue
        if start >= 0 and end > start:
            cues.append((lineno, Cue(start, end, "\n".join(body))))
    return _finish(cues, errors, duration, "WebVTT")


def read_srt(path: str | os.PathLike[str], *, duration: float | None = None) -> list[Cue]:
    """:func:`parse_srt` of a file, refusing files over :data:`MAX_SUBTITLE_BYTES` unread."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_SUBTITLE_BYTES:
        raise _too_big(size)
    return parse_srt(p.read_bytes(), duration=duration)


def rewrap(cues: Iterable[Cue], line_width: int = DEFAULT_LINE_WIDTH) -> list[Cue]:
    """The same cues with every line re-wrapped to ``line_width`` columns (e.g. an uploaded
    SRT before burning it into a narrow portrait video)."""
    return [
        dataclasses.replace(cue, text="\n".join(wrap_text(cue.text, line_width))) for cue in cues
    ]
