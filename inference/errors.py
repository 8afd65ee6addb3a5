"""Exceptions raised by the inference library.

Every message is meant to be shown to the person who uploaded the file or submitted the job,
so it says what is wrong and what to do about it, without stack traces or internal paths.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of every error the inference library raises on purpose."""


class MediaError(InferenceError):
    """A media file is missing, empty, truncated, corrupt or of an unsupported kind."""

    def __init__(self, message: str, *, path: str | None = None, detail: str | None = None):
        super().__init__(message)
        #: The file concerned (for logs; not part of the human message).
        self.path = path
        #: ffmpeg's own words, for logs.
        self.detail = detail


class NoFaceError(InferenceError):
    """The face detector found no face where one is needed."""


class EngineUnavailable(InferenceError):
    """The requested engine does not exist or cannot run here (e.g. no checkpoint)."""


class RenderCanceled(InferenceError):
    """The caller asked to stop; the render was abandoned and left no output file."""

    def __init__(self, message: str = "The render was canceled.") -> None:
        super().__init__(message)
