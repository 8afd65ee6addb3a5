"""Exceptions raised by the inference library.

Every message is meant to be shown to the person who uploaded the file or submitted the job,
so it says what is wrong and what to do about it, without stack traces or internal paths.
The message is in English; ``code`` names the problem and ``params`` holds its values, so an
application can say the same in the person's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class InferenceError(Exception):
    """Base class of every error the inference library raises on purpose."""

    #: What kind of problem this is, stable across wordings (e.g. ``"truncated"``).
    code: str = "inference_error"
    #: The values the message names (seconds, a format…), for a translated message.
    params: Mapping[str, object] = MappingProxyType({})


class MediaError(InferenceError):
    """A media file is missing, empty, truncated, corrupt or of an unsupported kind."""

    code = "media_error"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        detail: str | None = None,
        code: str | None = None,
        params: Mapping[str, object] | None = None,
    ):
        super().__init__(message)
        #: The file concerned (for logs; not part of the human message).
        self.path = path
        #: ffmpeg's own words, for logs.
        self.detail = detail
        if code:
            self.code = code
        self.params = dict(params or {})


class NoFaceError(InferenceError):
    """The face detector found no face where one is needed."""

    code = "no_face"


class EngineUnavailable(InferenceError):
    """The requested engine does not exist or cannot run here (e.g. no checkpoint)."""

    code = "engine_unavailable"


class RenderCanceled(InferenceError):
    """The caller asked to stop; the render was abandoned and left no output file."""

    code = "canceled"

    def __init__(self, message: str = "The render was canceled.") -> None:
        super().__init__(message)
