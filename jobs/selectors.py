"""Organization-scoped reads for projects, assets, batches, jobs and outputs."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from accounts.models import Membership
from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag


def project_list(membership: Membership) -> QuerySet[Project]:
    return (
        Project.objects.filter(organization=membership.organization_id)
        .annotate(batch_count=Count("batches"))
        .order_by("-created_at")
    )


def batch_list(membership: Membership, project: Project) -> QuerySet[Batch]:
    return (
        Batch.objects.filter(project=project, project__organization=membership.organization_id)
        .with_counts()
        .select_related("created_by")
        .prefetch_related("tags")
        .order_by("-created_at")
    )


def asset_list(membership: Membership, kind: str) -> QuerySet[Asset]:
    return Asset.objects.filter(organization=membership.organization_id, kind=kind).order_by(
        "-created_at"
    )


def assets_by_ids(membership: Membership, kind: str, ids) -> list[Asset]:
    """Assets of this organization and kind; ids of others are silently not found."""
    clean = [int(i) for i in ids if str(i).isdigit()]
    found = {a.pk: a for a in asset_list(membership, kind).filter(pk__in=clean)}
    return [found[i] for i in clean if i in found]


def batch_jobs(batch: Batch) -> QuerySet[RenderJob]:
    return (
        RenderJob.objects.filter(batch=batch)
        .select_related("avatar", "audio", "output")
        .order_by("id")
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
    return list(
        Output.objects.filter(
            job__batch__project=project,
            job__batch__project__organization=membership.organization_id,
            job__batch__tags__name=tag,
            job__status=RenderJob.Status.SUCCEEDED,
        )
        .select_related("job__batch")
        .order_by("job_id")[:500]
    )
