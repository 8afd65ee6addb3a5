"""Exports: ask, no storms, build, limits, audit, delivery (local and S3), expiry, CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
import threading
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection
from django.http import QueryDict
from django.utils import timezone

from accounts import services as account_services
from accounts.audit import verify_chain
from accounts.models import AuditEvent
from core.storage import media as media_storage
from core.storage.bundles import bundle_store
from exports import services
from exports.models import Export
from exports.scope import scope_from_params
from tests.stack import files_under

pytestmark = pytest.mark.django_db

NAMES = ["数字人_北京_第1条.mp4", "Ünïcødé 🎬 promo.mp4", "plain.mp4"]


def _scope(membership, **params):
    q = QueryDict(mutable=True)
    for key, value in params.items():
        q.setlist(key, value if isinstance(value, list) else [str(value)])
    return scope_from_params(membership, q)


def _path(export: Export, settings) -> Path:
    """The bundle as a local file: where it was written, or a copy out of the bucket."""
    export.refresh_from_db()
    if export.storage == "s3":
        target = Path(settings.EXPORT_ROOT).parent / "from-bucket" / export.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        bundle_store("s3").download(export.storage_key, target)
        return target
    return Path(settings.EXPORT_ROOT) / export.storage_key


def _leftovers(settings) -> list:
    """Bundle files, temp files, objects and unfinished uploads: whatever a build left."""
    found: list = files_under(settings.EXPORT_ROOT)
    if settings.EXPORT_STORAGE == "s3":
        client, bucket = bundle_store("s3").client(), settings.EXPORT_S3_BUCKET
        listed = client.list_objects_v2(Bucket=bucket, Prefix=settings.EXPORT_S3_PREFIX)
        found += [item["Key"] for item in listed.get("Contents", [])]
        found += client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return found


@pytest.fixture
def batch_outputs(member, make_outputs):
    return make_outputs(member, NAMES, batch_name="第一批", tags=("north",))


@pytest.fixture
def built(member, batch_outputs, django_capture_on_commit_callbacks):
    batch, outputs = batch_outputs
    with django_capture_on_commit_callbacks(execute=True):
        export, created = services.export_request(
            membership=member, scope=_scope(member, batch=batch.pk)
        )
    assert created
    export.refresh_from_db()
    return export, outputs


class TestAsk:
    def test_preview_reads_rows_only(self, member, batch_outputs, settings):
        batch, outputs = batch_outputs
        for name in media_storage.list_names():  # no file is read for the preview
            media_storage.delete(name)
        count, size = services.export_preview(
            membership=member, scope=_scope(member, batch=batch.pk)
        )
        assert (count, size) == (3, sum(o.bytes for o in outputs))

    def test_request_is_audited_and_identical_requests_share_one_export(
        self, member, batch_outputs
    ):
        batch, _ = batch_outputs
        scope = _scope(member, batch=batch.pk)
        first, created = services.export_request(membership=member, scope=scope)
        second, created_again = services.export_request(membership=member, scope=scope)
        assert created and not created_again and first.pk == second.pk
        assert Export.objects.count() == 1
        event = AuditEvent.objects.get(action="export.requested")
        assert (event.file_count, event.total_bytes) == (3, first.total_bytes)
        assert event.detail == {"scope": f"batch:{batch.pk}"}

    def test_nothing_to_pack(self, member, make_outputs):
        batch, outputs = make_outputs(member, ["a.mp4"])
        outputs[0].job.status = "failed"
        outputs[0].job.save()
        with pytest.raises(ValidationError, match="Nothing to pack"):
            services.export_request(membership=member, scope=_scope(member, batch=batch.pk))
        assert not Export.objects.exists()

    def test_foreign_scope_looks_missing(self, member, outsider, make_outputs):
        batch, outputs = make_outputs(outsider, ["x.mp4"])
        for params in (
            {"batch": batch.pk},
            {"project": batch.project_id},
            {"output": outputs[0].pk},
        ):
            with pytest.raises(ValidationError, match=r"do(es)? not exist"):
                _scope(member, **params)

    def test_viewer_cannot_ask(self, viewer, batch_outputs):
        with pytest.raises(PermissionDenied):
            services.export_request(
                membership=viewer, scope=_scope(viewer, batch=batch_outputs[0].pk)
            )


class TestBuild:
    def test_bundle_opens_everywhere_with_the_right_names(self, built, settings):
        export, outputs = built
        assert export.status == "ready", export.error
        path = _path(export, settings)
        # Named after what it holds (project, kind, batch), then the time and the id.
        assert re.fullmatch(
            rf"Project acme_batch_第一批_\d{{8}}_\d{{4}}_{export.pk}\.zip", path.name
        )
        assert export.zip_bytes == path.stat().st_size
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None
            infos = z.infolist()
            assert [i.filename for i in infos] == ["manifest.csv", *NAMES]
            for info in infos:
                assert info.compress_type == zipfile.ZIP_STORED
                assert info.flag_bits & 0x800
            for output, info in zip(outputs, infos[1:], strict=True):
                data = z.read(info)
                assert hashlib.sha256(data).hexdigest() == output.sha256
            manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode("utf-8-sig"))))
        assert [row["path"] for row in manifest] == NAMES
        assert [row["sha256"] for row in manifest] == [o.sha256 for o in outputs]
        assert manifest[0]["avatar"] == "主播.mp4" and manifest[0]["tags"] == "north"
        for tool in (["unzip", "-t"], ["7z", "t"], ["bsdtar", "-tf"]):
            if shutil.which(tool[0]) is None:
                pytest.fail(
                    f"{tool[0]} is missing: make test installs unzip, p7zip-full, libarchive-tools"
                )
            result = subprocess.run([*tool, str(path)], capture_output=True, timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
        listing = subprocess.run(
            ["bsdtar", "-tf", str(path)], capture_output=True, text=True
        ).stdout
        assert "数字人_北京_第1条.mp4" in listing and "Ünïcødé 🎬 promo.mp4" in listing

    def test_built_is_audited_and_requester_notified(self, built, member):
        export, _ = built
        event = AuditEvent.objects.get(action="export.built")
        assert event.file_count == 3 and event.detail["zip_bytes"] == export.zip_bytes
        assert member.user.notifications.get().kind == "export.ready"
        assert verify_chain(member.organization).ok

    def test_requester_removed_before_build_gets_nothing(
        self, member, owner, batch_outputs, settings, django_capture_on_commit_callbacks
    ):
        batch, _ = batch_outputs
        export, _ = services.export_request(membership=member, scope=_scope(member, batch=batch.pk))
        account_services.membership_remove(membership=owner, target=member)
        assert services.build_export(export_id=export.pk) == "failed"
        export.refresh_from_db()
        assert "no longer allowed" in export.error
        failed = AuditEvent.objects.get(action="export.failed")
        assert failed.outcome == "denied"
        assert _leftovers(settings) == []

    def test_changed_file_fails_with_a_reason_and_leaves_nothing(
        self, member, batch_outputs, settings
    ):
        batch, outputs = batch_outputs
        media_storage.save_bytes(outputs[1].file.name, b"shorter")
        export, _ = services.export_request(membership=member, scope=_scope(member, batch=batch.pk))
        assert services.build_export(export_id=export.pk) == "failed"
        export.refresh_from_db()
        assert "file changed since it was rendered" in export.error
        assert _leftovers(settings) == []

    def test_hard_limit_stops_the_build_and_leaves_no_file(self, member, batch_outputs, settings):
        settings.EXPORT_HARD_LIMIT_S = -1
        batch, _ = batch_outputs
        export, _ = services.export_request(membership=member, scope=_scope(member, batch=batch.pk))
        assert services.build_export(export_id=export.pk) == "failed"
        export.refresh_from_db()
        assert "limit" in export.error
        assert _leftovers(settings) == []
        assert member.user.notifications.get().kind == "export.failed"

    def test_organization_limit_keeps_extra_builds_queued(self, member, make_outputs, settings):
        settings.EXPORT_MAX_ACTIVE_PER_ORG = 1
        b1, _ = make_outputs(member, ["a.mp4"])
        b2, _ = make_outputs(member, ["b.mp4"], project=b1.project)
        e1, _ = services.export_request(membership=member, scope=_scope(member, batch=b1.pk))
        e2, _ = services.export_request(membership=member, scope=_scope(member, batch=b2.pk))
        Export.objects.filter(pk=e1.pk).update(status="building", started_at=timezone.now())
        assert services.build_export(export_id=e2.pk) == "skipped"
        assert Export.objects.get(pk=e2.pk).status == "queued"
        Export.objects.filter(pk=e1.pk).update(status="ready")
        assert services.dispatch_waiting(organization_id=member.organization_id) == 1
        assert Export.objects.get(pk=e2.pk).status == "ready"  # tasks run inline in unit tests

    def test_project_and_tag_scopes_use_folders_and_unique_names(
        self, member, make_outputs, settings
    ):
        b1, _ = make_outputs(member, ["Same.mp4", "same.mp4"], batch_name="A/B: 1", tags=("x",))
        make_outputs(member, ["other.mp4"], project=b1.project, batch_name="", tags=("y",))
        export, _ = services.export_request(
            membership=member, scope=_scope(member, project=b1.project_id)
        )
        services.build_export(export_id=export.pk)
        with zipfile.ZipFile(_path(export, settings)) as z:
            names = z.namelist()
        assert names[0] == "manifest.csv"
        assert "A_B_ 1/Same.mp4" in names and "A_B_ 1/same (2).mp4" in names
        assert any(n.startswith("Batch ") and n.endswith("/other.mp4") for n in names)
        tagged, _ = services.export_request(
            membership=member, scope=_scope(member, project=b1.project_id, tag="y")
        )
        services.build_export(export_id=tagged.pk)
        with zipfile.ZipFile(_path(tagged, settings)) as z:
            assert len(z.namelist()) == 2 and z.namelist()[1].endswith("/other.mp4")


class TestDeliver:
    @pytest.mark.local_storage  # the S3 handover: tests/test_exports_s3.py
    def test_download_resume_and_audit(self, built, login, member, viewer, outsider, settings):
        export, _ = built
        url = f"/o/{member.organization.slug}/exports/{export.pk}/download/"
        client = login(member)
        whole = client.get(url)
        body = b"".join(whole.streaming_content)
        assert whole.status_code == 200 and body == _path(export, settings).read_bytes()
        assert f"filename*=UTF-8''{quote(export.filename)}" in whole["Content-Disposition"]
        half = len(body) // 2
        rest = client.get(url, HTTP_RANGE=f"bytes={half}-")
        assert rest.status_code == 206 and body[:half] + b"".join(rest.streaming_content) == body
        bad = client.get(url, HTTP_RANGE=f"bytes={len(body) + 5}-")
        assert bad.status_code == 416
        # One download: the resumed transfer and the unsatisfiable range are not new downloads.
        assert AuditEvent.objects.filter(action="export.downloaded").count() == 1
        assert login(viewer).get(url).status_code == 403
        assert login(outsider).get(url).status_code == 404
        assert login(outsider).get(f"/o/rival/exports/{export.pk}/download/").status_code == 404

    @pytest.mark.local_storage
    def test_x_accel_redirect(self, built, login, member, settings):
        settings.EXPORT_X_ACCEL_PREFIX = "/_bundles/"
        export, _ = built
        response = login(member).get(f"/o/{member.organization.slug}/exports/{export.pk}/download/")
        assert response["X-Accel-Redirect"] == f"/_bundles/{quote(export.storage_key)}"
        assert response.content == b""

    def test_pages_confirm_then_follow(
        self, login, admin, make_outputs, django_capture_on_commit_callbacks
    ):
        batch, _outputs = make_outputs(admin, ["a.mp4", "b.mp4"])
        client = login(admin)
        slug = admin.organization.slug
        page = client.get(f"/o/{slug}/batches/{batch.pk}/").content.decode()
        assert f"/o/{slug}/exports/new/?batch={batch.pk}" in page
        confirm = client.get(f"/o/{slug}/exports/new/", {"batch": batch.pk}).content.decode()
        assert "2 videos" in confirm and "KB" in confirm
        assert not Export.objects.exists()  # looking costs nothing
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/o/{slug}/exports/new/", {"batch": batch.pk})
        export = Export.objects.get()
        assert response.url == f"/o/{slug}/exports/{export.pk}/"
        status = client.get(f"/o/{slug}/exports/{export.pk}/status.json").json()
        assert status["status"] == "ready" and status["download"]
        assert "Download ZIP" in client.get(response.url).content.decode()
        assert client.get(f"/o/{slug}/exports/new/", {"batch": 99999}).status_code == 404

    def test_expiry_deletes_the_file(self, built, settings):
        export, _ = built
        assert _leftovers(settings) != []
        Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert services.expire_exports() == 1
        assert _leftovers(settings) == []
        assert Export.objects.get(pk=export.pk).status == "expired"
        assert AuditEvent.objects.filter(action="export.expired").exists()


class TestCommand:
    def test_export_bundle(self, member, batch_outputs, tmp_path):
        batch, _ = batch_outputs
        out = tmp_path / "bundle.zip"
        stdout = io.StringIO()
        call_command(
            "export_bundle", "--org", "acme", "--as", "MEMBER@acme.test", "--batch", str(batch.pk),
            "--out", str(out), stdout=stdout,
        )  # fmt: skip
        assert stdout.getvalue().strip() == str(out)
        with zipfile.ZipFile(out) as z:
            assert z.testzip() is None and len(z.namelist()) == 4
        assert AuditEvent.objects.filter(
            action="export.requested", user_agent="manage.py export_bundle"
        ).exists()

    def test_export_bundle_refuses_viewers(self, viewer, batch_outputs):
        with pytest.raises(CommandError, match="may not"):
            call_command("export_bundle", "--org", "acme", "--as", "viewer@acme.test",
                         "--batch", str(batch_outputs[0].pk))  # fmt: skip


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_requests_make_one_export(make_outputs):
    from tests.factories import MembershipFactory

    member = MembershipFactory(role="member")
    batch, _ = make_outputs(member, ["a.mp4", "b.mp4"])
    results, errors = [], []
    barrier = threading.Barrier(20)

    def ask():
        try:
            barrier.wait()
            results.append(
                services.export_request(membership=member, scope=_scope(member, batch=batch.pk))
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert Export.objects.count() == 1
    assert len({e.pk for e, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert AuditEvent.objects.filter(action="export.requested").count() == 1
    assert AuditEvent.objects.filter(action="export.built").count() == 1
