"""Assets: uploaded avatar videos and audio tracks, checked by their content (ffprobe, a face
detector) and stored under generated names; the name the browser sent is display data only."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership
from accounts.permissions import role_allows
from accounts.services import require
from core.names import without_invisible
from core.storage import media as storage
from jobs.models import Asset, Batch, RenderJob, Script
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

    The same bytes already in the organization's library as this kind are not stored again:
    the asset there is returned, marked ``reused`` (the page and the API say so).
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
    sha256 = _sha256_of(upload.path)
    existing = _in_library(membership, kind, sha256)
    if existing is not None:
        return existing
    info, ext, face = _probe_upload(kind, upload)
    name = f"assets/{membership.organization_id}/{uuid.uuid4().hex}.{ext}"
    saved = storage.save_file(upload.path, name, sha256=sha256)
    size = saved.bytes
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
    except IntegrityError:
        # The same content was stored by a concurrent upload a moment ago: that one is the
        # library's entry, this copy goes.
        storage.delete(name)
        existing = _in_library(membership, kind, sha256)
        if existing is None:
            raise
        return existing
    except BaseException:
        storage.delete(name)
        raise
    return asset


def _sha256_of(path: Path) -> str:
    with path.open("rb") as reader:
        return hashlib.file_digest(reader, "sha256").hexdigest()


def _in_library(membership: Membership, kind: str, sha256: str) -> Asset | None:
    """The organization's asset of this kind and content, marked ``reused``, if there is one."""
    asset = (
        Asset.objects.in_library()
        .filter(organization=membership.organization_id, kind=kind, sha256=sha256)
        .first()
    )
    if asset is not None:
        asset.reused = True
    return asset


def asset_rename(
    *, membership: Membership, asset: Asset, name: str, meta: RequestMeta = SYSTEM
) -> Asset:
    """Give a library entry another display name (videos already made keep theirs)."""
    require(membership, "asset.rename")
    raw = name if isinstance(name, str) else ""
    new = display_name(raw, fallback="")
    if not new:
        raise ValidationError(
            {"name": [_("Give the file a name (letters or digits, not only spaces or dots).")]},
            code="blank",
        )
    with transaction.atomic():
        asset = _locked(membership, asset)
        old = asset.original_name
        if new == old:
            return asset
        asset.original_name = new
        asset.save(update_fields=["original_name"])
        record_event(
            organization=membership.organization,
            action="asset.renamed",
            actor=membership.user,
            target=Target.of(asset),
            meta=meta,
            detail={"kind": asset.kind, "from": old, "to": new},
        )
    return asset


def asset_deletable_by(membership: Membership, asset: Asset) -> bool:
    """Whether this member may delete the asset: what they uploaded themselves
    (``asset.delete``), anyone's (``asset.delete_any``)."""
    own = asset.created_by_id == membership.user_id
    return role_allows(membership.role, "asset.delete" if own else "asset.delete_any")


def asset_delete(*, membership: Membership, asset: Asset, meta: RequestMeta = SYSTEM) -> None:
    """Remove an asset from the library and its file from storage.

    Refused while a queued or running job uses it. Videos already made keep working: they are
    files of their own. The row stays, out of the library, while finished jobs name it (their
    pages still say what they were made of, and they cannot be retried); otherwise it goes.
    """
    require(membership, "asset.delete")
    with transaction.atomic():
        asset = _locked(membership, asset)
        pk = asset.pk
        if not asset_deletable_by(membership, asset):
            require(membership, "asset.delete_any")
        uses = RenderJob.objects.filter(Q(avatar=asset) | Q(audio=asset) | Q(script__audio=asset))
        busy = uses.filter(status__in=(RenderJob.Status.QUEUED, RenderJob.Status.RUNNING))
        waiting = busy.count()
        if waiting:
            batches = list(
                Batch.objects.filter(jobs__in=busy).distinct().order_by("-created_at")[:3]
            )
            raise ValidationError(
                ngettext(
                    "“%(name)s” cannot be deleted: %(num)d video that uses it is still queued "
                    "or rendering (%(batches)s). Delete it once that video has finished, or "
                    "cancel it.",
                    "“%(name)s” cannot be deleted: %(num)d videos that use it are still queued "
                    "or rendering (%(batches)s). Delete it once they have finished, or cancel "
                    "them.",
                    waiting,
                )
                % {
                    "name": asset.original_name,
                    "num": waiting,
                    "batches": ", ".join(f"“{b}”" for b in batches),
                },
                code="in_use",
            )
        files = [asset.file.name]
        # A script's synthesised audio: the script speaks again when it is next needed.
        Script.objects.filter(audio=asset).update(audio=None)
        record_event(
            organization=membership.organization,
            action="asset.deleted",
            actor=membership.user,
            target=Target.of(asset),
            meta=meta,
            file_count=1,
            total_bytes=asset.bytes,
            detail={"kind": asset.kind, "sha256": asset.sha256},
        )
        if uses.exists():
            asset.deleted_at = timezone.now()
            asset.save(update_fields=["deleted_at"])
        else:
            asset.delete()
        org_id = membership.organization_id
        transaction.on_commit(lambda: _remove_files(files, f"prep/{org_id}/{pk}"))


def _remove_files(names: list[str], prep_folder: str) -> None:
    for name in names:
        storage.delete(name)
    storage.delete_matching(prep_folder, "*")


def _locked(membership: Membership, asset: Asset) -> Asset:
    """The asset, locked, when it is this organization's and still in the library."""
    try:
        return (
            Asset.objects.in_library()
            .select_for_update()
            .get(pk=asset.pk, organization=membership.organization_id)
        )
    except Asset.DoesNotExist as exc:
        raise ValidationError(
            _("This file is no longer in the library (it was deleted)."), code="gone"
        ) from exc
