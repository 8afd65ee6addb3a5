"""Organization-scoped reads for projects, assets, batches, jobs and outputs."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import Membership
from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag


def project_list(membership: Membership) -> QuerySet[Project]:
    return (
        Project.objects.filter(organization=membership.organization_id)
        .annotate(batch_count=Count("batches"))
        .order_by("-created_at")
    )


def batch_list(membership: Membership, project: Project) -> QuerySet[Batch]:
    """The project's batches, newest first, each with its tags as a list (``tag_list``);
    without job counts: counting here would join every job of the project before the page is
    cut, ``with_job_counts`` counts one page's."""
    return (
        Batch.objects.filter(project=project, project__organization=membership.organization_id)
        .select_related("created_by")
        .prefetch_related(Prefetch("tags", to_attr="tag_list"))
        .order_by("-created_at")
    )


def with_job_counts(batches) -> list[Batch]:
    """The batches, each with the job counts ``Batch.with_counts()`` annotates (jobs_total,
    jobs_queued, …, so ``Batch.status`` reads them), from one query over their jobs only."""
    batches = list(batches)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if batches:
        rows = (
            RenderJob.objects.filter(batch__in=[b.pk for b in batches])
            .order_by()
            .values("batch_id", "status")
            .annotate(n=Count("id"))
            .values_list("batch_id", "status", "n")
        )
        for batch_id, status, n in rows:
            counts[batch_id][status] = n
    s = RenderJob.Status
    for batch in batches:
        mine = counts.get(batch.pk, {})
        batch.jobs_total = sum(mine.values())
        batch.jobs_queued = mine.get(s.QUEUED, 0)
        batch.jobs_running = mine.get(s.RUNNING, 0)
        batch.jobs_succeeded = mine.get(s.SUCCEEDED, 0)
        batch.jobs_failed = mine.get(s.FAILED, 0)
        batch.jobs_canceled = mine.get(s.CANCELED, 0)
    return batches


def asset_list(membership: Membership, kind: str) -> QuerySet[Asset]:
    """The organization's library entries of one kind, newest first (deleted ones are gone)."""
    return (
        Asset.objects.in_library()
        .filter(organization=membership.organization_id, kind=kind)
        .order_by("-created_at", "-id")
    )


def library(membership: Membership, *, kind: str = "", query: str = "") -> QuerySet[Asset]:
    """The library page and list: this organization's assets, newest first, of one ``kind``
    when given, whose name (or script text) holds every word of ``query``."""
    assets = Asset.objects.in_library().filter(organization=membership.organization_id)
    if kind:
        assets = assets.filter(kind=kind)
    for word in query.split()[:8]:
        assets = assets.filter(Q(original_name__icontains=word) | Q(text__icontains=word))
    return assets.select_related("created_by").order_by("-created_at", "-id")


def assets_by_ids(membership: Membership, kind: str, ids) -> list[Asset]:
    """Assets of this organization and kind; ids of others are silently not found."""
    clean = [int(i) for i in ids if str(i).isdigit()]
    found = {a.pk: a for a in asset_list(membership, kind).filter(pk__in=clean)}
    return [found[i] for i in clean if i in found]


def batch_jobs(batch: Batch) -> QuerySet[RenderJob]:
    return (
        RenderJob.objects.filter(batch=batch)
        .select_related("avatar", "audio", "script__audio", "output")
        .order_by("id")
    )


# What the batch page shows of a job and of its output (``RenderJob.percent`` reads the first
# four, ``RenderJob.error_text`` the last three); the rest (paths, hashes, hosts, timestamps)
# stays in the database.
_JOB_STATE = (
    "id", "number", "status", "frames_done", "frames_total", "attempts", "error", "error_code",
    "error_params",
)  # fmt: skip
_OUTPUT_CARD = ("output__id", "output__name", "output__bytes", "output__duration")
# A result's title in the player: its avatar and its audio (or its script's first words).
_RESULT_TITLE = ("avatar__original_name", "audio__original_name", "script__text")
# Whether the files were deleted from the library since (the page says so beside their names).
_DELETED = ("avatar__deleted_at", "audio__deleted_at")
# Jobs in the order they were submitted, as numbered (the id breaks ties of unnumbered rows).
_JOB_ORDER = ("number", "id")


def batch_job_rows(batch: Batch) -> QuerySet[RenderJob]:
    """The batch page's rows: each job's state, its assets' names and its output's card."""
    return (
        RenderJob.objects.filter(batch=batch)
        .select_related("avatar", "audio", "output")
        .only(*_JOB_STATE, *_OUTPUT_CARD, "avatar__original_name", "audio__original_name")
        .order_by(*_JOB_ORDER)
    )


def batch_job_states(batch: Batch) -> QuerySet[RenderJob]:
    """What the batch page's poll needs: each job's state and its output's card, no assets."""
    return (
        RenderJob.objects.filter(batch=batch)
        .select_related("output")
        .only(*_JOB_STATE, *_OUTPUT_CARD)
        .order_by(*_JOB_ORDER)
    )


def batch_detail(membership: Membership, pk: int) -> Batch:
    return (
        Batch.objects.select_related("project", "created_by")
        .prefetch_related("tags", Prefetch("jobs", queryset=RenderJob.objects.only("status")))
        .get(pk=pk, project__organization=membership.organization_id)
    )


def output_for(membership: Membership, pk: int) -> Output:
    return Output.objects.select_related("job").get(
        pk=pk, job__batch__project__organization=membership.organization_id
    )


def project_tags(membership: Membership, project: Project) -> list[str]:
    return list(
        Tag.objects.filter(organization=membership.organization_id, batches__project=project)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )


def tagged_outputs(membership: Membership, project: Project, tag: str) -> list[Output]:
    """The project's finished videos of batches tagged ``tag`` (the first 500), each with its
    job's batch, number and what the player's title names (avatar, audio or script)."""
    return list(
        Output.objects.filter(
            job__batch__project=project,
            job__batch__project__organization=membership.organization_id,
            job__batch__tags__name=tag,
            job__status=RenderJob.Status.SUCCEEDED,
        )
        .select_related("job__batch", "job__avatar", "job__audio", "job__script")
        .order_by("job__batch_id", "job__number", "job_id")[:500]
    )


_SCRIPT_CARD = ("output_name", "script__id", "script__text", "script__voice", "output__subtitles")


def batch_page_rows(batch: Batch) -> QuerySet[RenderJob]:
    """The batch page's rows with what scripts and sheets add: each job's script (its words
    and voice), its output name, and whether its video has subtitles."""
    return (
        RenderJob.objects.filter(batch=batch)
        .select_related("avatar", "audio", "script", "output")
        .only(*_JOB_STATE, *_OUTPUT_CARD, *_SCRIPT_CARD, *_RESULT_TITLE, *_DELETED)
        .order_by(*_JOB_ORDER)
    )


def batch_page_states(batch: Batch) -> QuerySet[RenderJob]:
    """The batch page's poll, with whether each finished video has subtitles and what its
    card's player title names."""
    return (
        RenderJob.objects.filter(batch=batch)
        .select_related("output", "avatar", "audio", "script")
        .only(*_JOB_STATE, *_OUTPUT_CARD, "output__subtitles", *_RESULT_TITLE)
        .order_by(*_JOB_ORDER)
    )
