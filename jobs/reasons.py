"""What a person is told when a file is refused or a render job fails, in their language.

``inference`` has no Django, so it cannot translate: its errors carry a stable ``code`` and the
values they name (``params``), and the face check's verdict names its ``problem``. This module
turns those into sentences of the active language. A job's failure is stored the same way, as
a code and its values (``RenderJob.error_code`` / ``error_params``), and worded when someone
looks at it, so every member reads it in their own language; ``RenderJob.error`` keeps the
English wording for logs, webhooks and jobs that failed before codes were stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from django.utils import translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

Params = Mapping[str, Any]


def _number(value: Any, decimals: int = 0) -> str:
    try:
        return number_format(round(float(value), decimals), decimals)
    except (TypeError, ValueError):
        return str(value)


# --- media files (inference.errors.MediaError and its relatives) -------------------------------


# ffmpeg's readers of single pictures besides its "<codec>_pipe" ones (png_pipe, jpeg_pipe…).
_STILL_IMAGES = {"image2": "JPEG/PNG", "gif": "GIF", "apng": "PNG"}


def _unsupported_format(p: Params) -> str:
    found = str(p.get("format") or "")
    if found.endswith("_pipe") or found in _STILL_IMAGES:
        # A photo: say what it is, not "png_pipe".
        return _(
            "This is a still image (%(format)s), not a video or a sound file. An avatar must be "
            "a video: record a few seconds of the face looking at the camera and upload that."
        ) % {"format": _STILL_IMAGES.get(found) or found.removesuffix("_pipe").upper()}
    if found:
        return _(
            "This kind of file (%(format)s) is not supported. Upload a video (MP4, MOV, MKV, "
            "WebM, AVI) or an audio file (WAV, MP3, M4A, AAC, OGG, FLAC)."
        ) % {"format": p["format"]}
    return _(
        "This kind of file is not supported. Upload a video (MP4, MOV, MKV, WebM, AVI) or an "
        "audio file (WAV, MP3, M4A, AAC, OGG, FLAC)."
    )


_INFERENCE: dict[str, Callable[[Params], str]] = {
    "missing": lambda p: _("The file does not exist (it may have been removed)."),
    "not_a_file": lambda p: _("This is not a regular file."),
    "empty": lambda p: _("The file is empty (0 bytes). Upload it again."),
    "no_streams": lambda p: _(
        "The file contains no audio or video stream. Upload a video (MP4, MOV, MKV, WebM) or an "
        "audio file (WAV, MP3, M4A, AAC, OGG, FLAC)."
    ),
    "incomplete": lambda p: (
        _(
            "The file is incomplete: it should last %(expected)s s but its data ends at "
            "%(measured)s s (an interrupted upload or copy). Upload the complete file again."
        )
        % {"expected": _number(p.get("expected"), 1), "measured": _number(p.get("measured"), 1)}
    ),
    "no_duration": lambda p: _("The file has no playable duration (it is empty or broken)."),
    "too_slow": lambda p: (
        _("Reading the file took longer than %(seconds)s s; it is probably damaged.")
        % {"seconds": _number(p.get("seconds"))}
    ),
    "unsupported_format": _unsupported_format,
    "index_missing": lambda p: _(
        "The file is incomplete: its MP4/MOV index is missing, which happens when an upload or "
        "a recording was interrupted. Upload the complete file again."
    ),
    "unreadable": lambda p: _(
        "The file is not a readable audio or video file (it may be corrupt, or another kind of "
        "file renamed). Upload a video (MP4, MOV, MKV, WebM) or an audio file (WAV, MP3, M4A, "
        "AAC, OGG, FLAC)."
    ),
    "truncated": lambda p: _(
        "The file is truncated (it ends too early). Upload the complete file again."
    ),
    "permission_denied": lambda p: _("The file cannot be read (permission denied)."),
    "ffmpeg_failed": lambda p: (
        _("ffmpeg could not read the file: %(reason)s.") % {"reason": p.get("reason", "")}
    ),
    "no_video": lambda p: _("The file has no video stream."),
    # Raised by the engines while rendering.
    "no_face": lambda p: _(
        "No face was found in the first seconds of the avatar video. Use a video where one face "
        "looks at the camera, well lit and not too small."
    ),
    "engine_unavailable": lambda p: (
        _(
            "The %(engine)s engine cannot run on this installation right now. Ask your "
            "administrator to set it up, or submit the videos again with another engine."
        )
        % {"engine": p.get("engine", "")}
    ),
    "face_models_missing": lambda p: _(
        "The face models are not installed on the render worker. Ask your administrator to "
        "install them, then retry the job."
    ),
    "canceled": lambda p: _("Canceled while rendering."),
    # Speech synthesis (inference.tts.TTSError), on submit and on the render queue.
    "empty_text": lambda p: _("The script is empty: write the words the presenter should say."),
    "text_too_long": lambda p: (
        _(
            "The script has %(chars)s characters; at most %(limit)s can be spoken in one video. "
            "Shorten it or split it into several videos."
        )
        % {"chars": p.get("chars", ""), "limit": p.get("limit", "")}
    ),
    "unknown_voice": lambda p: (
        _("There is no voice “%(voice)s” on this installation.") % {"voice": p.get("voice", "")}
    ),
    "bad_setting": lambda p: _bad_setting(p),
    "engine_missing": lambda p: _(
        "Speech synthesis is not set up on this installation (its voice engine is missing). "
        "Ask your administrator, or upload an audio file instead."
    ),
    "synthesis_failed": lambda p: _(
        "The voice could not speak the script. Check that it is written in a language the "
        "voice speaks, or choose another voice."
    ),
    # Output options (inference.media.outputs.OutputOptionError).
    "bad_resolution": lambda p: (
        _("Unknown resolution “%(resolution)s”: choose source, 1080p, 720p or 480p.")
        % {"resolution": p.get("resolution", "")}
    ),
    "bad_quality": lambda p: (
        _("Unknown quality “%(quality)s”: choose draft, standard or high.")
        % {"quality": p.get("quality", "")}
    ),
    "bad_corner": lambda p: (
        _(
            "Unknown watermark corner “%(corner)s”: choose top-left, top-right, bottom-left or "
            "bottom-right."
        )
        % {"corner": p.get("corner", "")}
    ),
    "bad_watermark_opacity": lambda p: _("The watermark opacity must be between 0 and 1."),
    "watermark_missing": lambda p: _("The watermark image is missing; upload it again."),
    "watermark_not_png": lambda p: _(
        "The watermark must be a PNG image (with transparency); export it as PNG and upload it "
        "again."
    ),
    "watermark_too_large": lambda p: (
        _(
            "The watermark is %(width)s×%(height)s pixels; use an image of at most %(limit)s "
            "pixels per side."
        )
        % {"width": p.get("width", ""), "height": p.get("height", ""), "limit": p.get("limit", "")}
    ),
    "no_subtitles_filter": lambda p: _(
        "This installation cannot burn subtitles into videos (its ffmpeg has no subtitles "
        "filter). Ask your administrator, or turn burned-in subtitles off."
    ),
}


def _bad_setting(p: Params) -> str:
    values = {"low": _number(p.get("low"), 1), "high": _number(p.get("high"), 1)}
    if p.get("setting") == "rate":
        return (
            _(
                "The speaking rate must be between %(low)s and %(high)s (1 is the voice's "
                "normal speed)."
            )
            % values
        )
    if p.get("setting") == "pitch":
        return (
            _("The pitch must be between %(low)s and %(high)s (1 is the voice's normal pitch).")
            % values
        )
    return _("This voice has no rate or pitch setting; leave both at 1.")


# --- subtitle files (inference.subtitles.SubtitleError) ------------------------------------------

# SubtitleError lists (line, problem) with the problem in English and no code, so each kind of
# problem is recognised by its wording and said again in the reader's language.
_SUBTITLE_PROBLEMS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"the file is saved as UTF-16"),
        lambda m: _(
            "the file is saved as UTF-16; save it as UTF-8 (for example “UTF-8” in Notepad's "
            "Save As dialog) and upload it again"
        ),
    ),
    (
        re.compile(r"this is not UTF-8 text"),
        lambda m: _(
            "this is not UTF-8 text (perhaps GBK or Latin-1); save the file as UTF-8 and upload "
            "it again"
        ),
    ),
    (
        re.compile(r"the file is ([\d.]+) MB; subtitle files may be at most ([\d.]+) MB"),
        lambda m: (
            _("the file is %(size)s MB; subtitle files may be at most %(limit)s MB")
            % {"size": m[1], "limit": m[2]}
        ),
    ),
    (
        re.compile(r"expected a timing line like '([^']*)', found '(.*)'$", re.S),
        lambda m: (
            _("expected a timing line like “%(example)s”, found “%(found)s”")
            % {"example": m[1], "found": m[2]}
        ),
    ),
    (re.compile(r"impossible time"), lambda m: _("impossible time (minutes and seconds go to 59)")),
    (
        re.compile(r"the cue ends before \(or when\) it starts"),
        lambda m: _("the cue ends before (or when) it starts"),
    ),
    (
        re.compile(r"the file holds (\d+) cues; at most (\d+) are accepted"),
        lambda m: (
            _("the file holds %(num)s cues; at most %(max)s are accepted")
            % {"num": m[1], "max": m[2]}
        ),
    ),
    (
        re.compile(r"the cue starts at (\S+) but the audio lasts only ([\d.]+) s"),
        lambda m: (
            _("the cue starts at %(at)s but the audio lasts only %(seconds)s s")
            % {"at": m[1], "seconds": m[2]}
        ),
    ),
    (re.compile(r"the file holds no subtitles"), lambda m: _("the file holds no subtitles")),
    (
        re.compile(r"expected a cue number, found '(.*)'$", re.S),
        lambda m: _("expected a cue number, found “%(found)s”") % {"found": m[1]},
    ),
    (
        re.compile(r"a cue number with no timing line after it"),
        lambda m: _("a cue number with no timing line after it"),
    ),
    (
        re.compile(r"a timing line inside a cue's text"),
        lambda m: _("a timing line inside a cue's text: a blank line is missing between cues"),
    ),
    (re.compile(r"the cue has no text"), lambda m: _("the cue has no text")),
]


def subtitle_problem_text(line: int, problem: str) -> str:
    """One problem of an uploaded subtitle file (``SubtitleError.errors``), in the active
    language, with its line number (line 0: the file as a whole)."""
    for pattern, word in _SUBTITLE_PROBLEMS:
        match = pattern.search(problem)
        if match:
            problem = word(match)
            break
    if not line:
        return problem
    return _("line %(line)s: %(problem)s") % {"line": line, "problem": problem}


def inference_error_text(exc: Exception) -> str:
    """What the person is told about an ``inference`` error (a file refused on upload), in
    the active language. A code this module has no words for yet keeps the library's English,
    introduced in the person's language."""
    word = _INFERENCE.get(getattr(exc, "code", ""))
    if word is not None:
        return word(getattr(exc, "params", {}) or {})
    return _("A media file could not be used: %(reason)s") % {"reason": str(exc)}


def face_verdict_text(verdict: Any, name: str) -> str:
    """Why the avatar video called ``name`` was refused by the face check
    (``inference.face.FaceVerdict``), in the active language."""
    from inference.face.video import (
        MAX_YAW_DEGREES,
        MIN_FACE_FRACTION,
        MIN_FACE_PX,
        NO_FACE,
        TOO_SMALL,
        TURNED_AWAY,
    )

    if verdict.problem == NO_FACE:
        seconds = round(verdict.seconds)
        return ngettext(
            "No face was found in the first %(seconds)s second of “%(name)s”. Use a video "
            "where one face looks at the camera, well lit.",
            "No face was found in the first %(seconds)s seconds of “%(name)s”. Use a video "
            "where one face looks at the camera, well lit.",
            seconds,
        ) % {"seconds": seconds, "name": name}
    if verdict.problem == TOO_SMALL:
        share = 100 * verdict.face_height / max(verdict.frame_height, 1)
        return _(
            "The face in “%(name)s” is too small: about %(height)s px tall, %(share)s%% of the "
            "%(frame)s px frame height. It must be at least %(minimum)s px tall here "
            "(%(fraction)s%% of the frame height, and never under %(floor)s px). Upload a "
            "closer shot where the face fills more of the picture."
        ) % {
            "name": name,
            "height": _number(verdict.face_height),
            "share": _number(share),
            "frame": verdict.frame_height,
            "minimum": _number(verdict.min_face_height),
            "fraction": _number(100 * MIN_FACE_FRACTION),
            "floor": MIN_FACE_PX,
        }
    if verdict.problem == TURNED_AWAY:
        return _(
            "The face in “%(name)s” is turned away from the camera (about %(yaw)s° to the side; "
            "at most %(limit)s° works). Upload a video where the person looks into the camera."
        ) % {"name": name, "yaw": _number(abs(verdict.yaw)), "limit": _number(MAX_YAW_DEGREES)}
    return _("No usable face was found in “%(name)s”.") % {"name": name}


# --- render jobs ---------------------------------------------------------------------------------


def _reason(p: Params) -> str:
    """A nested reason ({"code", "params"}) worded, or an older plain English one."""
    reason = p.get("reason", "")
    if isinstance(reason, Mapping):
        return job_error_text(reason.get("code", ""), reason.get("params") or {})
    return str(reason)


_JOB: dict[str, Callable[[Params], str]] = {
    "canceled_before_start": lambda p: _("Canceled before it started."),
    "canceled_while_rendering": lambda p: _("Canceled while rendering."),
    "time_limit": lambda p: (
        _("Stopped after the %(seconds)s s time limit per job.") % {"seconds": p.get("seconds", "")}
    ),
    "input_missing": lambda p: (
        _("An input file is missing from storage: %(detail)s") % {"detail": p.get("detail", "")}
    ),
    "disk_full": lambda p: _(
        "The disk of the render worker or of the media storage is full (No space left on "
        "device). Free some space, then retry the job."
    ),
    "device_unusable": lambda p: (
        _(
            "A render worker on %(host)s cannot use its device (%(reason)s); the job waits for "
            "another worker. Administrators: fix INFERENCE_DEVICE on that host."
        )
        % {"host": p.get("host", ""), "reason": p.get("reason", "")}
    ),
    "internal": lambda p: _("Internal error: %(reason)s") % {"reason": p.get("reason", "")},
    "worker_lost": lambda p: (
        _("The worker (%(host)s, pid %(pid)s) stopped responding during attempt %(attempt)s")
        % {"host": p.get("host", ""), "pid": p.get("pid", ""), "attempt": p.get("attempt", "")}
    ),
    "worker_lost_canceled": lambda p: (
        _(
            "The worker (%(host)s, pid %(pid)s) stopped responding during attempt %(attempt)s; the "
            "job was canceled."
        )
        % {"host": p.get("host", ""), "pid": p.get("pid", ""), "attempt": p.get("attempt", "")}
    ),
    "retrying": lambda p: (
        _("Attempt %(attempt)s failed (%(reason)s); retrying.")
        % {"attempt": p.get("attempt", ""), "reason": _reason(p)}
    ),
    "no_subtitles": lambda p: _(
        "Burned-in subtitles were asked for, but the audio has no subtitles (they were removed "
        "after the batch was submitted). Attach an SRT file to the audio, then retry the job."
    ),
    "gave_up": lambda p: (
        ngettext(
            "%(reason)s — gave up after %(attempts)s attempt.",
            "%(reason)s — gave up after %(attempts)s attempts.",
            int(p.get("attempts") or 0),
        )
        % {"reason": _reason(p), "attempts": p.get("attempts", "")}
    ),
}


def job_error_text(code: str, params: Params, fallback: str = "") -> str:
    """A render job's stored failure (code and values) in the active language: a job code of
    this module, else an inference code (with the library's English in ``params["message"]``).
    Without a code (a job that failed before codes were stored), ``fallback``: its English."""
    if not code:
        return fallback
    word = _JOB.get(code) or _INFERENCE.get(code)
    if word is not None:
        return word(params)
    english = params.get("message") or fallback
    if code == "media_error":
        return _("A media file could not be used: %(reason)s") % {"reason": english}
    return _("Rendering failed: %(reason)s") % {"reason": english}


class JobError(NamedTuple):
    """A job's failure as stored: its code and values (worded for each reader) and its English
    wording (``RenderJob.error``: logs, the ``job.failed`` webhook, older rows)."""

    code: str
    params: dict[str, Any]
    english: str

    def fields(self) -> dict[str, Any]:
        """The RenderJob fields that store it."""
        return {
            "error": self.english[:4000],
            "error_code": self.code[:40],
            "error_params": self.params,
        }

    def nested(self) -> dict[str, Any]:
        """As the reason of another failure ("Attempt 2 failed (…); retrying.")."""
        return {"code": self.code, "params": self.params}


def job_error(code: str, **params: Any) -> JobError:
    """A failure of this module's ``code`` with its values, and its English wording."""
    with translation.override("en"):
        english = job_error_text(code, params)
    return JobError(code, params, english)


def inference_job_error(exc: Exception, **extra: Any) -> JobError:
    """An ``inference`` error that failed a job: its code and values (with its English
    message, used when the code is new to this module), and its English."""
    params = {**dict(getattr(exc, "params", {}) or {}), **extra, "message": str(exc)}
    return JobError(getattr(exc, "code", "") or "inference_error", params, str(exc))
