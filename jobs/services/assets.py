"""Assets: uploaded avatar videos and audio tracks, checked by their content (ffprobe, a face
detector) and stored under generated names; the name the browser sent is display data only."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership
from accounts.services import require
from core.names import without_invisible
from core.storage import media as storage
from jobs.models import Asset
from jobs.reasons import face_verdict_text, inference_error_text

# ffmpeg's format names -> the extension we store under, per kind. The content decides.
VIDEO_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "mkv",
    "avi": "avi",
}
AUDIO_CONTAINERS = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "flac": "flac",
    "aac": "aac",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "matroska,webm": "mka",
}
FACE_SEARCH_SECONDS = 3.0


@dataclass(frozen=True)
class UploadedMedia:
    """An upload already streamed to a temp file, with the name the browser sent."""

    path: Path
    original_name: str


def display_name(raw: str, fallback: str = "upload") -> str:
    """A safe display name: no folders, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = without_invisible(name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name or fallback


def _probe_upload(kind: str, upload: UploadedMedia):
    from inference.errors import MediaError
    from inference.face import check_face_in_video
    from inference.media import probe

    label = display_name(upload.original_name)
    try:
        info = probe(upload.path, verify=True)
    except MediaError as exc:
        raise _media_refusal(label, exc) from exc
    if kind == Asset.Kind.AVATAR and not info.has_video:
        raise ValidationError(
            _("“%(name)s” has no video stream: an avatar must be a video.") % {"name": label},
            code="no_video",
        )
    if kind == Asset.Kind.AUDIO and not info.has_audio:
        raise ValidationError(
            _("“%(name)s” has no audio stream: upload a sound file.") % {"name": label},
            code="no_audio",
        )
    containers = VIDEO_CONTAINERS if kind == Asset.Kind.AVATAR else AUDIO_CONTAINERS
    ext = containers.get(info.format_name)
    if ext is None:
        if kind == Asset.Kind.AVATAR:
            text = _(
                "“%(name)s” is a %(format)s file, which is not accepted here. Use MP4, MOV, "
                "MKV/WebM or AVI."
            )
        else:
            text = _(
                "“%(name)s” is a %(format)s file, which is not accepted here. Use WAV, MP3, "
                "M4A/AAC, OGG or FLAC (or a video with a sound track)."
            )
        raise ValidationError(
            text % {"name": label, "format": info.format_name}, code="unsupported_format"
        )
    face = None
    if kind == Asset.Kind.AVATAR:
        if info.duration > settings.ASSET_MAX_VIDEO_SECONDS:
            raise ValidationError(
                _("“%(name)s” lasts %(seconds)s s; avatar videos may last at most %(limit)s s.")
                % {
                    "name": label,
                    "seconds": f"{info.duration:.0f}",
                    "limit": f"{settings.ASSET_MAX_VIDEO_SECONDS:.0f}",
                },
                code="too_long",
            )
        if (info.width or 0) > settings.ASSET_MAX_WIDTH or (
            info.height or 0
        ) > settings.ASSET_MAX_HEIGHT:
            raise ValidationError(
                _(
                    "“%(name)s” is %(width)s×%(height)s; the largest accepted size is "
                    "%(max_width)s×%(max_height)s."
                )
                % {
                    "name": label,
                    "width": info.width,
                    "height": info.height,
                    "max_width": settings.ASSET_MAX_WIDTH,
                    "max_height": settings.ASSET_MAX_HEIGHT,
                },
                code="too_large_frame",
            )
        try:
            verdict = check_face_in_video(upload.path, seconds=FACE_SEARCH_SECONDS, info=info)
        except MediaError as exc:
            raise _media_refusal(label, exc) from exc
        if not verdict.ok or verdict.box is None:
            # No face, a face too small, or one turned away: the verdict says which and what
            # to upload instead.
            raise ValidationError(face_verdict_text(verdict, label), code=verdict.problem)
        box = verdict.box
        face = {"x": box.x, "y": box.y, "w": box.w, "h": box.h}
    elif info.duration > settings.ASSET_MAX_AUDIO_SECONDS:
        raise ValidationError(
            _("“%(name)s” lasts %(seconds)s s; audio may last at most %(limit)s s.")
            % {
                "name": label,
                "seconds": f"{info.duration:.0f}",
                "limit": f"{settings.ASSET_MAX_AUDIO_SECONDS:.0f}",
            },
            code="too_long",
        )
    if info.duration <= 0:
        raise ValidationError(
            _("“%(name)s” has no playable content (zero length).") % {"name": label},
            code="no_duration",
        )
    return info, ext, face


def _media_refusal(label: str, exc: Exception) -> ValidationError:
    """A file ffmpeg could not use, refused with the reason in the person's language."""
    return ValidationError(
        _("“%(name)s”: %(reason)s") % {"name": label, "reason": inference_error_text(exc)},
        code=getattr(exc, "code", "media_error"),
    )


def asset_create(
    *, membership: Membership, kind: str, upload: UploadedMedia, meta: RequestMeta = SYSTEM
) -> Asset:
    """Validate an uploaded file by its content and store it under a generated name.

    Raises ValidationError with a reason a person can act on; then no row and no file remain.
    """
    require(membership, "asset.upload")
    if kind not in Asset.Kind.values:
        raise ValidationError(
            _("%(kind)s is not an asset kind: use avatar or audio.") % {"kind": repr(kind)[:40]},
            code="invalid_kind",
        )
    if upload.path.stat().st_size > settings.ASSET_MAX_BYTES:
        raise ValidationError(
            _("“%(name)s” is larger than the %(limit)s MB limit.")
            % {
                "name": display_name(upload.original_name),
                "limit": f"{settings.ASSET_MAX_BYTES / 1e6:.0f}",
            },
            code="too_large",
        )
    if upload.path.stat().st_size == 0:
        raise ValidationError(
            _("“%(name)s” is empty.") % {"name": display_name(upload.original_name)},
            code="empty",
        )
    info, ext, face = _probe_upload(kind, upload)
    name = f"assets/{membership.organization_id}/{uuid.uuid4().hex}.{ext}"
    saved = storage.save_file(upload.path, name)
    size, sha256 = saved.bytes, saved.sha256
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                organization=membership.organization,
                kind=kind,
                file=name,
                original_name=display_name(upload.original_name),
                container=info.format_name[:64],
                duration=info.duration,
                video_codec=(info.video_codec or "")[:32] if info.has_video else "",
                audio_codec=(info.audio_codec or "")[:32],
                width=info.width if info.has_video else None,
                height=info.height if info.has_video else None,
                fps=info.fps if info.has_video else None,
                sample_rate=info.sample_rate,
                bytes=size,
                sha256=sha256,
                face_box=face,
                created_by=membership.user,
            )
            record_event(
                organization=membership.organization,
                action="asset.uploaded",
                actor=membership.user,
                target=Target.of(asset),
                meta=meta,
                file_count=1,
                total_bytes=size,
                detail={"kind": kind, "sha256": sha256, "duration": round(info.duration, 3)},
            )
    except BaseException:
        storage.delete(name)
        raise
    return asset
