"""Start-up checks: fail loudly when the platform could not do its work.

Registered by HeygemSiteConfig.ready(); ``manage.py check``, ``runserver`` and ``qcluster``
all run them, so a misconfigured host refuses to start instead of failing on the first job.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Info, Warning, register

from core.storage import backend_for


def find_ffmpeg() -> str | None:
    """The ffmpeg binary the platform will use (FFMPEG_BINARY, the system one, or
    imageio-ffmpeg's), found by the same code the render workers use; None if there is none."""
    from inference.errors import InferenceError
    from inference.ffmpeg_bin import locate_ffmpeg

    try:
        return locate_ffmpeg(settings.FFMPEG_BINARY)
    except InferenceError:
        return None


def _ensure_dir(path: Path) -> str | None:
    """Create the folder if it is missing; return why that failed, or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return str(exc)
    return None


@register("heygem", deploy=False)
def check_storage_and_tools(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    media = Path(settings.MEDIA_ROOT)
    local = backend_for("media") == "local"
    problem = _ensure_dir(media) if local else None
    if local and (problem or not os.access(media, os.R_OK | os.X_OK)):
        errors.append(
            Error(
                f"The media folder {media} is not readable ({problem or 'permission denied'}).",
                hint="Set MEDIA_ROOT to a folder this user can read and write.",
                id="heygem.E001",
            )
        )
    exports = Path(settings.EXPORT_ROOT)
    problem = _ensure_dir(exports)
    if problem or not os.access(exports, os.W_OK | os.X_OK):
        errors.append(
            Error(
                f"The export folder {exports} is not writable ({problem or 'permission denied'}).",
                hint="Set EXPORT_ROOT to a folder this user can write.",
                id="heygem.E002",
            )
        )
    if find_ffmpeg() is None:
        errors.append(
            Error(
                "No ffmpeg binary was found (FFMPEG_BINARY, PATH, or the imageio-ffmpeg package).",
                hint="Install ffmpeg (apt-get install ffmpeg) or `pip install imageio-ffmpeg`.",
                id="heygem.E003",
            )
        )
    errors.extend(_face_model_errors())
    return errors


@register("heygem", deploy=False)
def check_engines(app_configs=None, **kwargs) -> list[Info]:
    """Engines members are not offered, and why: for operators, not for the batch form."""
    from jobs.engines import all_engines

    return [
        Info(
            f"The {engine.label} engine is not offered to members: {engine.reason}.",
            id="heygem.I001",
        )
        for engine in all_engines()
        if not engine.available
    ]


def _face_model_errors() -> list[Error]:
    """Uploads are checked for a usable face and every engine follows the lips with
    MediaPipe's models: without them no avatar can be accepted or rendered."""
    from inference.face.models import MODEL_FILES, FaceModelsMissing, model_bytes

    errors = []
    for model in MODEL_FILES:
        try:
            model_bytes(model)
        except FaceModelsMissing as exc:
            errors.append(Error(str(exc), hint="`make setup` installs them.", id="heygem.E004"))
    return errors


@register("heygem", deploy=False)
def check_voices(app_configs=None, **kwargs) -> list[Warning]:
    """Scripts are spoken on the render workers: without a voice, members can still upload
    audio, but every script they submit is refused. Piper models the operator put in
    TTS_PIPER_VOICES_DIR that cannot be used are named with the reason."""
    from inference.tts.piper import piper_installed, scan_voices
    from jobs.services.scripts import voices_for

    warnings: list[Warning] = []
    if not voices_for():
        warnings.append(
            Warning(
                "No text-to-speech voice is available: scripts cannot be spoken here.",
                hint="Install espeak-ng (apt-get install espeak-ng; `make setup` does), or put "
                "Piper voices in TTS_PIPER_VOICES_DIR.",
                id="heygem.W001",
            )
        )
    folder = settings.TTS_PIPER_VOICES_DIR
    if folder:
        _voices, problems = scan_voices(Path(folder))
        if not piper_installed():
            problems.insert(0, "the piper-tts package is not installed")
        warnings.extend(
            Warning(f"Piper voices: {problem}.", id="heygem.W002") for problem in problems
        )
    return warnings
