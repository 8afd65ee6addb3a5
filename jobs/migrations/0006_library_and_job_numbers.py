"""The library: assets can be deleted (``deleted_at``) and hold one entry per content and kind;
jobs are numbered 1..N within their batch.

Existing jobs are numbered in the order they were created. Existing duplicates (the same bytes
uploaded twice as the same kind) are merged into the oldest upload: jobs and scripts that named
a later copy name the oldest, and the copies leave the library (their files are left in storage;
nothing names them any more).

The constraints that hold this are added by 0007, in a transaction of its own: PostgreSQL
refuses to alter a table while the foreign-key checks of rows changed here are still pending.
"""

from django.db import migrations, models
from django.db.models import Count, Min


def number_jobs(apps, schema_editor):
    RenderJob = apps.get_model("jobs", "RenderJob")
    batch_ids = RenderJob.objects.values_list("batch_id", flat=True).distinct().order_by()
    for batch_id in batch_ids.iterator():
        jobs = list(RenderJob.objects.filter(batch_id=batch_id).order_by("id").only("id"))
        for number, job in enumerate(jobs, start=1):
            job.number = number
        RenderJob.objects.bulk_update(jobs, ["number"], batch_size=500)


def merge_duplicates(apps, schema_editor):
    Asset = apps.get_model("jobs", "Asset")
    RenderJob = apps.get_model("jobs", "RenderJob")
    Script = apps.get_model("jobs", "Script")
    groups = (
        Asset.objects.values("organization_id", "kind", "sha256")
        .order_by()
        .annotate(n=Count("id"), keep=Min("id"))
        .filter(n__gt=1)
    )
    for group in groups.iterator():
        copies = list(
            Asset.objects.filter(
                organization_id=group["organization_id"],
                kind=group["kind"],
                sha256=group["sha256"],
            )
            .exclude(pk=group["keep"])
            .values_list("pk", flat=True)
        )
        RenderJob.objects.filter(avatar_id__in=copies).update(avatar_id=group["keep"])
        RenderJob.objects.filter(audio_id__in=copies).update(audio_id=group["keep"])
        Script.objects.filter(audio_id__in=copies).update(audio_id=group["keep"])
        Asset.objects.filter(pk__in=copies).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0005_scripts_subtitles_output_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="asset",
            name="deleted_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="deleted"),
        ),
        migrations.AddField(
            model_name="renderjob",
            name="number",
            field=models.PositiveIntegerField(default=0, verbose_name="number in batch"),
        ),
        migrations.RunPython(number_jobs, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(merge_duplicates, migrations.RunPython.noop, elidable=True),
    ]
