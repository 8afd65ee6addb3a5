"""Exports: ask (cheap, de-duplicated), build (on the queue, permission re-checked, kernel
copies, bounded memory, time-limited), deliver (audited), expire."""

from __future__ import annotations

import csv
import io
import logging
import os
import socket
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import AuditEvent, Membership, Organization
from accounts.permissions import role_allows
from accounts.preferences import language_of, local_iso, zone_of
from accounts.services import notify, require
from accounts.webhooks import webhook_emit
from core import links, queue
from core.http import range_start
from core.spreadsheets import csv_safe
from core.storage import media as media_storage
from core.storage.bundles import BundleDiskFull, bundle_store
from exports.models import Export
from exports.scope import (
    BundleItem,
    Scope,
    bundle_file_stem,
    bundle_names,
    fingerprint,
    scope_fingerprint,
    scope_from_export,
    scope_outputs,
    scope_totals,
)
from exports.storage import ZipBody, partials_suffix
from exports.zipwriter import FileChangedError, ZipAborted, ZipEntry

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["path", "bytes", "sha256", "duration", "source_audio", "avatar", "tags"]
#: the last column: when each video was rendered, ISO 8601 with the offset of the zone of the
#: person who asked for the bundle; its header names the zone (``rendered_at (Asia/Shanghai)``)
RENDERED_AT = "rendered_at"


def export_preview(*, membership: Membership, scope: Scope) -> tuple[int, int]:
    """What a bundle would hold (file count, total bytes), from the rows alone."""
    require(membership, "export.request")
    return scope_totals(membership.organization_id, scope)


def reusable_export(*, organization_id: int, scope: Scope, fingerprint: str) -> Export | None:
    """A READY, unexpired bundle of ``scope`` whose files are the ones it holds now (same
    ``fingerprint``): it can be handed out instead of building the same ZIP again."""
    if not fingerprint:
        return None
    return (
        Export.objects.filter(
            organization=organization_id,
            scope_key=scope.key[:1000],
            status=Export.Status.READY,
            expires_at__gt=timezone.now(),
            fingerprint=fingerprint,
        )
        .order_by("-expires_at", "-pk")
        .first()
    )


def export_ready_for(*, membership: Membership, scope: Scope) -> Export | None:
    """The READY bundle the confirm page offers instead of a rebuild, if there is one."""
    require(membership, "export.request")
    org_id = membership.organization_id
    return reusable_export(
        organization_id=org_id, scope=scope, fingerprint=scope_fingerprint(org_id, scope)
    )


def export_request(
    *, membership: Membership, scope: Scope, meta: RequestMeta = SYSTEM, fresh: bool = False
) -> tuple[Export, bool]:
    """Create an export for ``scope`` — or return the identical one already queued or
    building (the database allows only one), or, unless ``fresh``, a READY unexpired bundle
    of the same scope with the same files (see :func:`reusable_export`). Returns (export,
    created): not created and READY means an existing bundle was handed out again, which is
    audited as ``export.requested`` with ``reused`` in its detail."""
    require(membership, "export.request")
    org = membership.organization
    count, size = scope_totals(org.pk, scope)
    if not count:
        raise ValidationError(
            _(
                "Nothing to pack yet: this selection has no finished videos. Wait for renders "
                "to finish, or choose another batch, project or tag."
            ),
            code="empty",
        )
    fields = scope.export_fields()
    files = scope_fingerprint(org.pk, scope)
    if not fresh and (ready := reusable_export(
        organization_id=org.pk, scope=scope, fingerprint=files
    )):  # fmt: skip
        with transaction.atomic():
            record_event(
                organization=org,
                action="export.requested",
                actor=membership.user,
                target=Target.of(ready, ready.label),
                meta=meta,
                file_count=ready.file_count,
                total_bytes=ready.total_bytes,
                detail={"scope": fields["scope_key"], "reused": True},
            )
        return ready, False
    queue.queue_check(queue.light_queue())
    try:
        with transaction.atomic():
            export = Export.objects.create(
                organization=org,
                requested_by=membership.user,
                requested_by_label=membership.user.email,
                file_count=count,
                total_bytes=size,
                storage=settings.EXPORT_STORAGE,
                fingerprint=files,
                **fields,
            )
            record_event(
                organization=org,
                action="export.requested",
                actor=membership.user,
                target=Target.of(export, export.label),
                meta=meta,
                file_count=count,
                total_bytes=size,
                detail={"scope": fields["scope_key"]},
            )
            _enqueue_build_on_commit(export.pk)
    except IntegrityError:
        existing = Export.objects.filter(
            organization=org, scope_key=fields["scope_key"], status__in=Export.ACTIVE
        ).first()
        if existing is None:  # it finished between our insert and this read: ask again
            return export_request(membership=membership, scope=scope, meta=meta, fresh=fresh)
        return existing, False
    return export, True


BUILD_TASK = "exports.tasks.build_export"


def _enqueue_build(export_id: int) -> None:
    """Give this queued export a build task now (a broker error is logged: the export stays
    queued and dispatch_waiting tries again within a minute)."""
    queue.enqueue(BUILD_TASK, [export_id], name="export", timeout=_build_timeout())


def _enqueue_build_on_commit(export_id: int) -> None:
    queue.enqueue_on_commit(BUILD_TASK, [export_id], name="export", timeout=_build_timeout())


def _build_timeout() -> int:
    return settings.EXPORT_HARD_LIMIT_S + 120


def bundle_filename(export: Export, when=None, scope: Scope | None = None) -> str:
    """``<what it holds>_<date>_<time>_<id>.zip``: the scope by name with a word for its kind
    in the active language (``春季推广_批量任务_北京经销商_20261207_1436_42.zip``), the time
    in the requester's zone. It ends with ``_<id>.zip`` (see ``partials_suffix``)."""
    when = (when or timezone.now()).astimezone(zone_of(export.requested_by))
    stem = bundle_file_stem(scope or scope_from_export(export), export.label)
    return f"{stem}_{when:%Y%m%d_%H%M}_{export.pk}.zip"


def _claim(export_id: int) -> Export | None:
    """queued -> building, unless the organization already builds its maximum."""
    with transaction.atomic():
        export = Export.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status != Export.Status.QUEUED:
            return None
        Organization.objects.select_for_update().only("pk").get(pk=export.organization_id)
        building = Export.objects.filter(
            organization=export.organization_id, status=Export.Status.BUILDING
        ).count()
        if building >= settings.EXPORT_MAX_ACTIVE_PER_ORG:
            return None  # stays queued; dispatched when a build of this organization ends
        export.status = Export.Status.BUILDING
        export.started_at = export.heartbeat_at = timezone.now()
        export.attempts += 1
        export.worker_host = socket.gethostname()[:255]
        export.worker_pid = os.getpid()
        export.save(
            update_fields=[
                "status",
                "started_at",
                "heartbeat_at",
                "attempts",
                "worker_host",
                "worker_pid",
            ]
        )
        return export


def _this_attempt(export: Export):
    """The export's row while it is still this build attempt's (not taken over meanwhile)."""
    return Export.objects.filter(
        pk=export.pk, status=Export.Status.BUILDING, attempts=export.attempts
    )


class _Lease:
    """A build's heartbeat, written every few seconds while bytes flow, so a worker that dies
    is noticed after EXPORT_LEASE_S. ``lost`` turns true when the row is no longer this
    attempt's (the build was taken for dead and retried or failed): the build then stops."""

    def __init__(self, export: Export) -> None:
        self.rows = _this_attempt(export)
        self.every = max(1.0, min(10.0, settings.EXPORT_LEASE_S / 6))
        self.lost = False
        self._last = time.monotonic()

    def beat(self, done: int = 0, total: int = 0) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.lost = not self.rows.update(heartbeat_at=timezone.now())


def _requester_membership(export: Export) -> Membership | None:
    if export.requested_by_id is None:
        return None
    return (
        Membership.objects.select_related("user", "organization")
        .filter(user=export.requested_by_id, organization=export.organization_id)
        .first()
    )


def _source_audio(job) -> str:
    """The audio a video speaks, by name: the uploaded track's, or the audio its script was
    spoken into."""
    audio = job.audio_asset
    return audio.original_name if audio is not None else ""


def _manifest(named: list[BundleItem], scope: Scope, zone) -> bytes:
    """manifest.csv: a row per file of the bundle (each video, then its subtitles); times in
    ``zone`` (the requester's), which the header names."""
    out = io.StringIO()
    out.write("\ufeff")  # a BOM, so spreadsheet programs read the UTF-8 names correctly
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*MANIFEST_COLUMNS, f"{RENDERED_AT} ({zone})"])
    for item in named:
        output, job = item.output, item.output.job
        tags = ";".join(t.name for t in job.batch.tags.all())
        files = [(item.path, output.bytes, output.sha256)]
        if item.subtitles_path:
            files.append((item.subtitles_path, output.subtitles_bytes, output.subtitles_sha256))
        for path, size, sha256 in files:
            writer.writerow(
                [
                    csv_safe(path),
                    size,
                    sha256,
                    f"{output.duration:.3f}",
                    csv_safe(_source_audio(job)),
                    csv_safe(job.avatar.original_name),
                    csv_safe(tags),
                    local_iso(output.created_at, zone),
                ]
            )
    return out.getvalue().encode("utf-8")


def _stored_entry(name: str, stored: str, size: int, crc32: int, mtime) -> ZipEntry:
    local = media_storage.local_path(stored)
    return ZipEntry(
        name=name,
        source=local,
        opener=None if local else partial(media_storage.open_stream, stored),
        size=size,
        crc32=crc32,
        mtime=mtime,
    )


def _entries(export: Export, scope: Scope) -> tuple[list[ZipEntry], int, int, str]:
    outputs = (
        scope_outputs(export.organization_id, scope)
        .select_related("job__batch__project", "job__avatar", "job__audio", "job__script__audio")
        .prefetch_related("job__batch__tags")
    )
    named = bundle_names(scope, outputs)
    if not named:
        raise ValidationError(_("Nothing to pack: the videos of this selection are gone."))
    manifest = _manifest(named, scope, zone_of(export.requested_by))
    # The manifest goes first: a small first entry never needs ZIP64 (Safari's unpacker
    # rejects a ZIP64 first entry).
    entries = [ZipEntry.from_bytes("manifest.csv", manifest, mtime=timezone.now())]
    size = 0
    for item in named:
        output = item.output
        entries.append(
            _stored_entry(
                item.path, output.file.name, output.bytes, output.crc32, output.created_at
            )
        )
        size += output.bytes
        if item.subtitles_path:
            # The subtitles beside their video, under the same name with .srt.
            entries.append(
                _stored_entry(
                    item.subtitles_path,
                    output.subtitles.name,
                    output.subtitles_bytes,
                    output.subtitles_crc32,
                    output.created_at,
                )
            )
            size += output.subtitles_bytes
    return entries, len(named), size, fingerprint(item.output for item in named)


def _fail(export: Export, reason: str, *, outcome=AuditEvent.Outcome.FAILURE) -> None:
    """Fail this build attempt, audited; nothing when the attempt was taken over already.
    ``reason`` is in the requester's language (see :func:`_requester_language`)."""
    with transaction.atomic():
        if not _this_attempt(export).update(
            status=Export.Status.FAILED, error=reason[:4000], finished_at=timezone.now()
        ):
            return
        record_event(
            organization=export.organization,
            action="export.failed",
            actor=None,
            target=Target.of(export, export.label),
            outcome=outcome,
            file_count=export.file_count,
            total_bytes=export.total_bytes,
            detail={"reason": reason[:500], "requested_by": export.requested_by_label},
        )
        if export.requested_by_id:
            with _requester_language(export):
                text = _("The bundle “%(label)s” failed: %(reason)s") % {
                    "label": export.label,
                    "reason": reason,
                }
            notify(
                user=export.requested_by,
                organization=export.organization,
                kind="export.failed",
                level="error",
                message=text[:500],
                link=links.export_page(export.organization.slug, export.pk),
            )
        webhook_emit(
            organization_id=export.organization_id,
            event="export.failed",
            payload={"export": export.pk, "label": export.label, "reason": reason[:500]},
        )


def _requester_language(export: Export):
    """The language of what a build writes for people (its error, the notification): the
    requester's, whoever runs the build."""
    return translation.override(language_of(export.requested_by))


def build_export(*, export_id: int) -> str:
    """Build one bundle on a worker. Returns the export's status afterwards."""
    export = _claim(export_id)
    if export is None:
        return "skipped"
    export = Export.objects.select_related("organization", "requested_by").get(pk=export.pk)
    try:
        with _requester_language(export):
            return _build(export)
    finally:
        # This build's slot is free now: start the next one this organization waits for.
        dispatch_waiting(organization_id=export.organization_id)


def _build(export: Export) -> str:
    store = bundle_store(export.storage)
    started = time.monotonic()
    lease = _Lease(export)
    try:
        membership = _requester_membership(export)
        if membership is None or not role_allows(membership.role, "export.request"):
            _fail(
                export,
                _("The requester is no longer allowed to export in this organization."),
                outcome=AuditEvent.Outcome.DENIED,
            )
            return Export.Status.FAILED
        scope = scope_from_export(export)
        entries, count, size, files = _entries(export, scope)
        filename = bundle_filename(export, scope=scope)
        deadline = started + settings.EXPORT_HARD_LIMIT_S
        body = ZipBody(
            entries,
            progress=lease.beat,
            should_stop=lambda: lease.lost or time.monotonic() > deadline,
        )
        stored = store.save(body, filename)
    except ZipAborted:
        if lease.lost:
            logger.warning("export %s: this build was taken for dead; it stops", export.pk)
            return Export.objects.get(pk=export.pk).status
        logger.error("export %s stopped at the hard limit", export.pk, exc_info=True)
        _fail(
            export,
            _("Stopped after the %(seconds)s s limit for one bundle.")
            % {"seconds": settings.EXPORT_HARD_LIMIT_S},
        )
        return Export.Status.FAILED
    except FileChangedError as exc:
        logger.error("export %s: %s", export.pk, exc, exc_info=True)
        _fail(export, _file_changed_reason(exc))
        return Export.Status.FAILED
    except (ValidationError, OSError) as exc:
        logger.error("export %s failed", export.pk, exc_info=True)
        _fail(export, _written_reason(exc))
        return Export.Status.FAILED
    except Exception as exc:
        logger.exception("export %s crashed", export.pk)
        _fail(export, _("Internal error: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"})
        return Export.Status.FAILED
    seconds = time.monotonic() - started
    now = timezone.now()
    with transaction.atomic():
        ready = _this_attempt(export).update(
            status=Export.Status.READY,
            storage_key=stored.key,
            filename=filename,
            zip_bytes=stored.size,
            file_count=count,
            total_bytes=size,
            fingerprint=files,
            finished_at=now,
            expires_at=now + timedelta(hours=settings.EXPORT_TTL_HOURS),
            error="",
        )
        if ready:
            record_event(
                organization=export.organization,
                action="export.built",
                actor=None,
                target=Target.of(export, export.label),
                file_count=count,
                total_bytes=size,
                detail={
                    "seconds": round(seconds, 3),
                    "zip_bytes": stored.size,
                    "filename": filename,
                    "storage": store.name,
                    "requested_by": export.requested_by_label,
                },
            )
            if export.requested_by_id:
                notify(
                    user=export.requested_by,
                    organization=export.organization,
                    kind="export.ready",
                    level="success",
                    message=ngettext(
                        "Your bundle “%(label)s” is ready (%(num)d video).",
                        "Your bundle “%(label)s” is ready (%(num)d videos).",
                        count,
                    )
                    % {"label": export.label, "num": count},
                    link=links.export_page(export.organization.slug, export.pk),
                )
            webhook_emit(
                organization_id=export.organization_id,
                event="export.ready",
                payload={
                    "export": export.pk,
                    "label": export.label,
                    "file_count": count,
                    "zip_bytes": stored.size,
                    "expires_at": (now + timedelta(hours=settings.EXPORT_TTL_HOURS)).isoformat(),
                    "download": links.absolute(
                        links.export_download_api(export.organization.slug, export.pk)
                    ),
                },
            )
    if not ready:
        # Taken for dead while it was finishing (and built again or failed meanwhile): what
        # this attempt stored belongs to no row.
        logger.warning("export %s: this build was taken for dead; its bundle is dropped", export.pk)
        if not Export.objects.filter(pk=export.pk, storage_key=stored.key).exists():
            store.delete(stored.key)
        return Export.objects.get(pk=export.pk).status
    return Export.Status.READY


def _file_changed_reason(exc: FileChangedError) -> str:
    """A video that changed or vanished since it was rendered, said to a person."""
    if not exc.entry:
        return str(exc)
    if exc.missing:
        text = _(
            "%(name)s: the file is missing (removed since it was rendered). Re-render it or "
            "leave it out, then ask again."
        )
    else:
        text = _(
            "%(name)s: file changed since it was rendered. Re-render it or leave it out, then "
            "ask again."
        )
    return text % {"name": exc.entry}


def _written_reason(exc: ValidationError | OSError) -> str:
    """Why the bundle could not be built or stored, said to a person: no server paths."""
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, BundleDiskFull):  # its message says what to do, already translated
        return str(exc)
    return _(
        "The bundle could not be written (%(error)s). Ask for it again; if it fails again, "
        "tell your administrator."
    ) % {"error": exc.strerror or type(exc).__name__}


def _stale_builds(cutoff):
    return Export.objects.filter(status=Export.Status.BUILDING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at=None, started_at__lt=cutoff)
    )


def _take_over_dead_build(export_id: int, cutoff) -> bool:
    """A build whose worker stopped sending heartbeats (killed, crashed, host gone): remove
    what it left, then build it once more or fail it with a reason. True when re-queued."""
    with transaction.atomic():
        locked = _stale_builds(cutoff).select_for_update().filter(pk=export_id)
        if not list(locked.values_list("pk", flat=True)):
            return False  # it came back to life, or someone else took it over
        export = Export.objects.select_related("organization", "requested_by").get(pk=export_id)
        bundle_store(export.storage).remove_partials(partials_suffix(export.pk), final_too=True)
        retry = export.attempts < settings.EXPORT_MAX_ATTEMPTS
        with _requester_language(export):
            reason = _worker_gone_reason(export, retry=retry)
        if retry:
            _this_attempt(export).update(
                status=Export.Status.QUEUED, heartbeat_at=None, error=reason
            )
            _enqueue_build_on_commit(export_id)
            logger.warning(
                "export %s: its worker (%s, pid %s) stopped responding; building it again",
                export_id,
                export.worker_host or "unknown host",
                export.worker_pid,
            )
            return True
        _fail(export, reason)
        return False


def _worker_gone_reason(export: Export, *, retry: bool) -> str:
    """A build whose worker stopped responding, said to a person: built again, or given up."""
    values = {
        "attempt": export.attempts,
        "host": export.worker_host or _("unknown host"),
        "pid": export.worker_pid,
    }
    if retry:
        return (
            _(
                "Build %(attempt)s stopped without finishing: its worker (%(host)s, pid %(pid)s) "
                "stopped responding. Building it again."
            )
            % values
        )
    return (
        _(
            "The bundle could not be built: its worker (%(host)s, pid %(pid)s) stopped "
            "responding during build %(attempt)s of %(attempt)s, and nothing was kept. Ask "
            "for it again; if it stops again, choose fewer videos or ask your administrator "
            "to check the export workers (memory, restarts)."
        )
        % values
    )


def dispatch_waiting(*, organization_id: int | None = None) -> int:
    """Queue builds for exports that wait on their organization's limit; take over builds
    whose worker died (no heartbeat for EXPORT_LEASE_S): built once more, then failed with a
    reason. Runs after each build and on a schedule (every minute)."""
    cutoff = timezone.now() - timedelta(seconds=settings.EXPORT_LEASE_S)
    requeued = [
        export_id
        for export_id in _stale_builds(cutoff).values_list("pk", flat=True)
        if _take_over_dead_build(export_id, cutoff)
    ]
    queued = Export.objects.filter(status=Export.Status.QUEUED).exclude(pk__in=requeued)
    building = Export.objects.filter(status=Export.Status.BUILDING)
    if organization_id:
        queued = queued.filter(organization=organization_id)
        building = building.filter(organization=organization_id)
    busy = dict(building.values_list("organization").annotate(n=Count("id")))
    sent = 0
    for org_id in queued.values_list("organization", flat=True).distinct():
        room = settings.EXPORT_MAX_ACTIVE_PER_ORG - busy.get(org_id, 0)
        if room <= 0:
            continue
        for export_id in (
            queued.filter(organization=org_id)
            .order_by("requested_at")
            .values_list("pk", flat=True)[:room]
        ):
            _enqueue_build(export_id)
            sent += 1
    return sent


def export_download_started(
    *, membership: Membership, export: Export, range_header: str = "", meta: RequestMeta = SYSTEM
) -> bool:
    """Record a download, with the byte range asked for. A transfer resumed past its first
    byte is the same download, not a new one — but only when this person already has a
    download recorded for this bundle; any other ranged request is a download like the
    others (a ``bytes=1-`` fetches all but one byte). Returns whether a row was written."""
    require(membership, "export.download")
    if export.status != Export.Status.READY:
        raise ValidationError(_not_downloadable(export), code="not_ready")
    if range_start(range_header) > 0 and _has_downloaded(membership, export):
        return False
    detail = {"filename": export.filename}
    if range_header:
        detail["range"] = range_header
    with transaction.atomic():
        Export.objects.filter(pk=export.pk).update(download_count=F("download_count") + 1)
        record_event(
            organization=membership.organization,
            action="export.downloaded",
            actor=membership.user,
            target=Target.of(export, export.label),
            meta=meta,
            file_count=export.file_count,
            total_bytes=export.zip_bytes,
            detail=detail,
        )
    return True


def _not_downloadable(export: Export) -> str:
    if export.status == Export.Status.EXPIRED:
        return _("This bundle has expired and was deleted; ask for it again.")
    if export.status == Export.Status.FAILED:
        return _("This bundle failed; it cannot be downloaded. Ask for it again.")
    return _("This bundle is still being packed; it can be downloaded when it is ready.")


def _has_downloaded(membership: Membership, export: Export) -> bool:
    return AuditEvent.objects.filter(
        organization=membership.organization_id,
        action="export.downloaded",
        actor=membership.user_id,
        target_type=Export._meta.model_name,
        target_id=str(export.pk),
    ).exists()


def expire_exports() -> int:
    """Delete bundles past their expiry (local or S3) and mark them expired."""
    expired = 0
    due = Export.objects.filter(status=Export.Status.READY, expires_at__lte=timezone.now())
    for export in due.select_related("organization"):
        try:
            bundle_store(export.storage).delete(export.storage_key)
        except Exception:
            logger.exception("could not delete bundle %s (%s)", export.pk, export.storage_key)
            continue
        with transaction.atomic():
            changed = Export.objects.filter(pk=export.pk, status=Export.Status.READY).update(
                status=Export.Status.EXPIRED
            )
            if changed:
                record_event(
                    organization=export.organization,
                    action="export.expired",
                    target=Target.of(export, export.label),
                    file_count=export.file_count,
                    total_bytes=export.zip_bytes,
                    detail={"filename": export.filename},
                )
                expired += 1
    return expired
