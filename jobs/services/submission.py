"""Batch submission: every avatar with every audio track and every script, and videos asked
for one by one (a sheet's rows), with the batch's output options. Everything is checked before
anything is made; the jobs are queued on the render cluster after commit, after asking the
broker first (``core.queue``'s policy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.audit import SYSTEM, RequestMeta, Target, record_event
from accounts.models import Membership
from accounts.services import require
from core import queue
from core.storage import media as storage
from jobs.models import Asset, Batch, Project, RenderJob, Script, Tag
from jobs.services.batches import engine_check, enqueue_renders_on_commit, parse_tags
from jobs.services.output_options import OutputSettings, output_settings_check, store_watermark
from jobs.services.scripts import ScriptSpec, script_check


@dataclass(frozen=True)
class JobSpec:
    """One video asked for on its own (a row of a batch sheet): an avatar with either an
    uploaded audio track or a script, its name in bundles (blank: ``avatar__audio.mp4``),
    whether its subtitles are burned in, and where it came from (``row``, for messages)."""

    avatar: Asset
    audio: Asset | None = None
    script: ScriptSpec | None = None
    output_name: str = ""
    burn_subtitles: bool = False
    row: int | None = None


def _where(spec: JobSpec, index: int) -> str:
    number = spec.row if spec.row is not None else index
    return _("Row %(number)s") % {"number": number}


def _asset_problem(asset: Asset, kind: str, org_id: int) -> ValidationError | None:
    if asset.organization_id != org_id:
        return ValidationError(_("One of the chosen files does not exist."), code="not_found")
    if asset.is_deleted:
        return _deleted(asset)
    if asset.kind != kind:
        text = (
            _("“%(name)s” is not an avatar file.")
            if kind == Asset.Kind.AVATAR
            else _("“%(name)s” is not an audio file.")
        )
        return ValidationError(text % {"name": asset.original_name}, code="wrong_kind")
    return None


def _deleted(asset: Asset) -> ValidationError:
    return ValidationError(
        _("“%(name)s” was deleted from the library; choose another file or upload it again.")
        % {"name": asset.original_name},
        code="deleted",
    )


def _no_subtitles(asset: Asset) -> str:
    return _(
        "“%(name)s” has no subtitles to burn in: attach an SRT file to it first, or turn "
        "burned-in subtitles off."
    ) % {"name": asset.original_name}


def _checked_scripts(
    scripts: Sequence[ScriptSpec], jobs: Sequence[JobSpec], errors: dict[str, list[str]]
) -> tuple[list[ScriptSpec], list[JobSpec]]:
    """The scripts checked and made ready (voice named, text trimmed); each problem is added
    to ``errors`` under ``scripts`` (numbered) or ``jobs`` (by row)."""
    checked: list[ScriptSpec] = []
    for number, spec in enumerate(scripts, start=1):
        try:
            checked.append(script_check(spec))
        except ValidationError as exc:
            for problem in exc.messages:
                errors.setdefault("scripts", []).append(
                    _("Script %(number)s: %(problem)s") % {"number": number, "problem": problem}
                )
    ready: list[JobSpec] = []
    for index, spec in enumerate(jobs, start=1):
        if spec.script is None:
            ready.append(spec)
            continue
        try:
            ready.append(replace(spec, script=script_check(spec.script)))
        except ValidationError as exc:
            for problem in exc.messages:
                errors.setdefault("jobs", []).append(
                    _("%(where)s: %(problem)s") % {"where": _where(spec, index), "problem": problem}
                )
    return list(dict.fromkeys(checked)), ready


def scripts_check(*, scripts: Sequence[ScriptSpec] = (), jobs: Sequence[JobSpec] = ()) -> None:
    """Refuse bad scripts before anything else is done (uploads probed, files stored):
    ValidationError naming each problem by script number (``scripts``) or row (``jobs``)."""
    errors: dict[str, list[str]] = {}
    _checked_scripts(list(scripts), list(jobs), errors)
    if errors:
        raise ValidationError(errors)


def _too_many(avatars: int, sources: int, rows: int) -> ValidationError:
    total = avatars * sources + rows
    if rows or not sources:
        return ValidationError(
            ngettext(
                "This batch would make %(num)d video; one batch may hold at most %(max)d. "
                "Split it into several batches.",
                "This batch would make %(num)d videos; one batch may hold at most %(max)d. "
                "Split it into several batches.",
                total,
            )
            % {"num": total, "max": settings.BATCH_MAX_JOBS},
            code="too_many_jobs",
        )
    return ValidationError(
        ngettext(
            "Every avatar with every audio track makes %(num)d video here (%(avatars)d × "
            "%(audios)d); one batch may hold at most %(max)d. Split it into several batches.",
            "Every avatar with every audio track makes %(num)d videos here (%(avatars)d × "
            "%(audios)d); one batch may hold at most %(max)d. Split it into several batches.",
            total,
        )
        % {"num": total, "avatars": avatars, "audios": sources, "max": settings.BATCH_MAX_JOBS},
        code="too_many_jobs",
    )


def batch_submit(
    *,
    membership: Membership,
    project: Project,
    avatars: Sequence[Asset] = (),
    audios: Sequence[Asset] = (),
    scripts: Sequence[ScriptSpec] = (),
    jobs: Sequence[JobSpec] = (),
    tags: str | Iterable[str] = (),
    engine: str = "warp",
    name: str = "",
    output: OutputSettings | None = None,
    burn_subtitles: bool = False,
    audit_detail: Mapping[str, Any] | None = None,
    meta: RequestMeta = SYSTEM,
) -> Batch:
    """Create a batch and its render jobs, queued after commit: every avatar with every audio
    track and every script (``avatars`` x (``audios`` + ``scripts``), subtitles burned in when
    ``burn_subtitles``), then each of ``jobs`` as given (a sheet's rows).

    Everything is checked before anything is made: the files (this organization's, of the
    right kind), every script (text, length, voice, rate, pitch), burned-in subtitles only
    where the audio has some, the output options (``output``: resolution, quality, a
    watermark PNG), tags, engine, size, the queue. A refusal is a ValidationError naming each
    problem with its field, script number or row, and leaves nothing behind. A script said by
    several jobs is stored once and synthesised once, on the render queue.
    """
    require(membership, "batch.submit")
    org_id = membership.organization_id
    if project.organization_id != org_id:
        raise Project.DoesNotExist(_("No such project."))
    avatars, audios = list(dict.fromkeys(avatars)), list(dict.fromkeys(audios))
    jobs, output = list(jobs), output or OutputSettings()
    if not avatars and not jobs:
        raise ValidationError({"avatars": _("Choose or upload at least one avatar video.")})
    if avatars and not audios and not scripts:
        raise ValidationError(
            {"audios": _("Choose or upload at least one audio track, or write a script.")}
        )
    if (audios or scripts) and not avatars:
        raise ValidationError({"avatars": _("Choose or upload at least one avatar video.")})
    for asset, kind in [(a, Asset.Kind.AVATAR) for a in avatars] + [
        (a, Asset.Kind.AUDIO) for a in audios
    ]:
        problem = _asset_problem(asset, kind, org_id)
        if problem is not None:
            raise problem
    errors: dict[str, list[str]] = {}
    for index, spec in enumerate(jobs, start=1):
        where = _where(spec, index)
        found = [(spec.avatar, Asset.Kind.AVATAR)]
        if (spec.audio is None) == (spec.script is None):
            errors.setdefault("jobs", []).append(
                _("%(where)s: give either an audio track or a script.") % {"where": where}
            )
        elif spec.audio is not None:
            found.append((spec.audio, Asset.Kind.AUDIO))
            if spec.burn_subtitles and not spec.audio.has_subtitles:
                errors.setdefault("jobs", []).append(
                    _("%(where)s: %(problem)s")
                    % {"where": where, "problem": _no_subtitles(spec.audio)}
                )
        for asset, kind in found:
            problem = _asset_problem(asset, kind, org_id)
            if problem is not None:
                raise problem
    scripts, jobs = _checked_scripts(list(scripts), jobs, errors)
    if burn_subtitles:
        for audio in audios:
            if not audio.has_subtitles:
                errors.setdefault("burn_subtitles", []).append(_no_subtitles(audio))
    try:
        output_settings_check(output)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    count = len(avatars) * (len(audios) + len(scripts)) + len(jobs)
    if count > settings.BATCH_MAX_JOBS:
        raise _too_many(len(avatars), len(audios) + len(scripts), len(jobs))
    tag_names = parse_tags(tags)
    engine_check(engine)
    queue.queue_check(queue.render_queue())
    name = (name or "").strip()[:120]
    watermark = store_watermark(output.watermark, org_id) if output.watermark else ""
    try:
        with transaction.atomic():
            batch = _create_batch(
                membership=membership,
                project=project,
                avatars=avatars,
                audios=audios,
                scripts=scripts,
                jobs=jobs,
                tag_names=tag_names,
                engine=engine,
                name=name,
                output=output,
                watermark=watermark,
                burn_subtitles=burn_subtitles,
                audit_detail=audit_detail,
                meta=meta,
            )
    except BaseException:
        if watermark and not Batch.objects.filter(watermark=watermark).exists():
            storage.delete(watermark)
        raise
    return batch


def _create_batch(
    *,
    membership: Membership,
    project: Project,
    avatars: list[Asset],
    audios: list[Asset],
    scripts: list[ScriptSpec],
    jobs: list[JobSpec],
    tag_names: list[str],
    engine: str,
    name: str,
    output: OutputSettings,
    watermark: str,
    burn_subtitles: bool,
    audit_detail: Mapping[str, Any] | None,
    meta: RequestMeta,
) -> Batch:
    org_id = membership.organization_id
    # The files stay in the library until the jobs exist: a delete waits for this lock and
    # then finds them queued (jobs.services.assets.asset_delete).
    chosen = {a.pk: a for a in (*avatars, *audios)}
    chosen.update({j.avatar.pk: j.avatar for j in jobs})
    chosen.update({j.audio.pk: j.audio for j in jobs if j.audio is not None})
    present = set(
        Asset.objects.in_library()
        .select_for_update()
        .filter(pk__in=chosen)
        .values_list("pk", flat=True)
    )
    for pk, asset in chosen.items():
        if pk not in present:
            raise _deleted(asset)
    batch = Batch.objects.create(
        project=project,
        name=name,
        created_by=membership.user,
        engine=engine,
        resolution=output.resolution,
        quality=output.quality,
        watermark=watermark,
        # Corner and opacity mean something (and were checked) only with a watermark.
        watermark_corner=output.watermark_corner if watermark else Batch.Corner.BOTTOM_RIGHT,
        watermark_opacity=float(output.watermark_opacity) if watermark else 0.8,
    )
    if tag_names:
        for tag in tag_names:
            Tag.objects.get_or_create(organization_id=org_id, name=tag)
        batch.tags.set(Tag.objects.filter(organization_id=org_id, name__in=tag_names))
    # One row per distinct script, however many jobs speak it: it is synthesised once.
    stored: dict[tuple, Script] = {}
    for spec in [*scripts, *(j.script for j in jobs if j.script is not None)]:
        if spec.key not in stored:
            stored[spec.key] = Script.objects.create(
                organization_id=org_id,
                text=spec.text,
                voice=spec.voice,
                rate=spec.rate,
                pitch=spec.pitch,
                created_by=membership.user,
            )
    now = timezone.now()
    rows = [
        RenderJob(
            batch=batch,
            avatar=avatar,
            audio=source if isinstance(source, Asset) else None,
            script=stored[source.key] if isinstance(source, ScriptSpec) else None,
            burn_subtitles=burn_subtitles,
            engine=engine,
            queued_at=now,
        )
        for avatar in avatars
        for source in [*audios, *scripts]
    ]
    rows += [
        RenderJob(
            batch=batch,
            avatar=spec.avatar,
            audio=spec.audio,
            script=stored[spec.script.key] if spec.script is not None else None,
            output_name=spec.output_name[:120],
            burn_subtitles=spec.burn_subtitles,
            engine=engine,
            queued_at=now,
        )
        for spec in jobs
    ]
    for number, row in enumerate(rows, start=1):
        row.number = number
    created = RenderJob.objects.bulk_create(rows)
    job_ids = (
        [j.pk for j in created]
        if created[0].pk
        else list(batch.jobs.order_by("id").values_list("id", flat=True))
    )
    files = {a.pk: a for a in (*avatars, *audios)}
    files.update({j.avatar.pk: j.avatar for j in jobs})
    files.update({j.audio.pk: j.audio for j in jobs if j.audio is not None})
    detail: dict[str, Any] = {
        "project": project.pk,
        "engine": engine,
        "avatars": len({*(a.pk for a in avatars), *(j.avatar.pk for j in jobs)}),
        "audios": len({*(a.pk for a in audios), *(j.audio.pk for j in jobs if j.audio)}),
        "scripts": len(stored),
        "tags": tag_names,
    }
    if jobs:
        detail["rows"] = len(jobs)
    if burn_subtitles or any(j.burn_subtitles for j in jobs):
        detail["burn_subtitles"] = burn_subtitles or sum(j.burn_subtitles for j in jobs)
    if not output.is_default:
        detail["output"] = output.audit_detail()
    detail.update(audit_detail or {})
    record_event(
        organization=membership.organization,
        action="batch.submitted",
        actor=membership.user,
        target=Target.of(batch),
        meta=meta,
        file_count=len(rows),
        total_bytes=sum(a.bytes for a in files.values()),
        detail=detail,
    )
    enqueue_renders_on_commit(job_ids)
    return batch
