"""Small worlds of rows the permission tests (pages and API) act on."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from accounts.models import ApiToken, Membership, Organization
from exports.models import Export
from jobs.models import Asset, Batch, Output, Project, RenderJob, Script

SRT = "1\n00:00:00,000 --> 00:00:00,800\nHello\n"


def token_for(membership: Membership, name: str) -> ApiToken:
    from django.utils.crypto import get_random_string

    return ApiToken.objects.create(
        organization=membership.organization,
        user=membership.user,
        name=name,
        prefix=get_random_string(8).lower(),
        token_hash=get_random_string(64),
    )


def jobs_world(org: Organization) -> dict:
    from core.storage import media as storage

    project = Project.objects.create(organization=org, name=f"P {org.slug}")
    common = {"organization": org, "duration": 1.0, "bytes": 10, "sha256": "0" * 64}
    avatar = Asset.objects.create(
        kind="avatar", file="assets/a.mp4", original_name="a.mp4", **common
    )
    audio = Asset.objects.create(
        kind="audio", file="assets/b.wav", original_name="b.wav", subtitles=SRT,
        subtitles_name="b.srt", **common,
    )  # fmt: skip
    for asset in (avatar, audio):  # the library's preview plays them
        storage.save_bytes(asset.file.name, b"not really media")
    # In the library, used by no job, uploaded by nobody still here: only admins delete it.
    spare_audio = Asset.objects.create(
        kind="audio", file="assets/c.wav", original_name="c.wav", organization=org,
        duration=1.0, bytes=10, sha256="c" * 64,
    )  # fmt: skip
    # A script not yet spoken (no job of this world speaks it: the job counts stay as they are).
    Script.objects.create(organization=org, text="Hello.", voice="espeak:en-us")
    batch = Batch.objects.create(project=project, engine="warp")
    make = lambda status: RenderJob.objects.create(  # noqa: E731
        batch=batch, avatar=avatar, audio=audio, engine="warp", status=status
    )
    queued, failed, done = make("queued"), make("failed"), make("succeeded")
    name = f"outputs/{org.pk}/o.mp4"
    storage.save_bytes(name, b"not really a video")
    srt = f"outputs/{org.pk}/o.srt"
    storage.save_bytes(srt, SRT.encode())
    output = Output.objects.create(
        job=done, file=name, name="o.mp4", bytes=18, sha256="0" * 64, crc32=0,
        duration=1.0, width=2, height=2, subtitles=srt, subtitles_bytes=len(SRT),
        subtitles_sha256="0" * 64, subtitles_crc32=0,
    )  # fmt: skip
    bundle = f"heygem_batch_result_20260101_0000_{org.pk}.zip"
    Path(settings.EXPORT_ROOT).mkdir(parents=True, exist_ok=True)
    (Path(settings.EXPORT_ROOT) / bundle).write_bytes(b"PK\x05\x06" + bytes(18))
    export = Export.objects.create(
        organization=org, scope="batch", scope_key=f"batch:{batch.pk}", batch=batch,
        label="x", status="ready", storage="local", storage_key=bundle, filename=bundle,
        file_count=1, total_bytes=18, zip_bytes=22,
    )  # fmt: skip
    return {
        "project": project, "avatar": avatar, "audio": audio, "batch": batch,
        "queued_job": queued, "failed_job": failed, "done_job": done, "output": output,
        "export": export, "spare_audio": spare_audio,
    }  # fmt: skip
