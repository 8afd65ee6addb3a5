"""The command-line client against a live server on loopback: submit a folder of audio,
follow the renders, get told by webhook, fetch and verify the project bundle; resume a
download; refuse a bundle that does not match its manifest."""

from __future__ import annotations

import io
import json
import queue
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest
from django.db import connection
from django_q import tasks as q_tasks

from accounts.models import AuditEvent
from accounts.permissions import Role
from heygem_client.bundle import verify_bundle
from heygem_client.cli import main
from heygem_client.http import ApiError, Client, MultipartBody
from heygem_client.webhooks import verify
from jobs import services as job_services
from jobs.models import Output
from jobs.services.batches import RENDER_TASK
from tests.api.test_webhooks import Receiver
from tests.factories import MembershipFactory, OrganizationFactory
from tests.media import make_audio


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, sleep=lambda seconds: time.sleep(0.05))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def render_worker(monkeypatch):
    """Render jobs in a thread of this process, the way a qcluster worker would: the jobs a
    batch queues (after its commit) are picked up and rendered while the client waits."""
    jobs: queue.Queue[int | None] = queue.Queue()
    real_async_task = q_tasks.async_task

    def take_renders(func, *args, **kwargs):
        if func == RENDER_TASK:
            jobs.put(args[0])
            return None
        return real_async_task(func, *args, **kwargs)

    monkeypatch.setattr(q_tasks, "async_task", take_renders)

    def work():
        try:
            while (job_id := jobs.get()) is not None:
                job_services.render_job_run(job_id=job_id)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield
    jobs.put(None)
    thread.join(timeout=120)


@pytest.fixture
def live_org(transactional_db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    org = OrganizationFactory(name="Acme Media", slug="acme")
    admin = MembershipFactory(organization=org, role=Role.ADMIN)
    member = MembershipFactory(organization=org, role=Role.MEMBER)
    return org, admin, member


def _token(membership) -> str:
    from accounts import services

    return services.api_token_create(membership=membership, name="script", expires_in_days=None)[1]


@pytest.mark.django_db(transaction=True)
def test_submit_wait_webhook_export_verify(
    live_server, live_org, render_worker, media_dir, tmp_path
):
    _, admin, member = live_org
    audios = tmp_path / "audios"
    audios.mkdir()
    make_audio(audios / "问候 1.wav", seconds=1.0)
    make_audio(audios / "promo-2.wav", seconds=0.6)
    (audios / ".DS_Store").write_bytes(b"junk")
    (audios / "notes.txt").write_text("not audio")
    avatar = tmp_path / "主播.mp4"
    shutil.copy(media_dir / "face.mp4", avatar)

    with Receiver() as receiver:
        admin_client = Client(live_server.url, _token(admin), "acme")
        hook = admin_client.post(
            "webhooks/", {"url": receiver.url, "events": ["batch.completed", "export.ready"]}
        )
        secret = hook["secret"]
        auth = ["--url", live_server.url, "--org", "acme", "--token", _token(member)]

        code, out, err = run(
            "submit", *auth, "--avatar", str(avatar), "--audio-dir", str(audios),
            "--project", "Launch", "--tag", "promo", "--wait", "--interval", "0.2",
        )  # fmt: skip
        assert code == 0, out + err
        assert "Created project “Launch”" in out
        assert "2 videos queued" in out and "2 of 2 videos rendered" in out
        assert "upload 主播.mp4" in err and "100%" in err

        code, out, err = run("status", *auth)
        assert code == 0 and "succeeded" in out and "2/2 done" in out
        batch_id = out.split()[0]
        code, out, _ = run("status", *auth, "--batch", batch_id)
        assert code == 0 and out.count("succeeded") >= 3 and "问候 1.wav" in out

        bundle = tmp_path / "bundle.zip"
        code, out, err = run(
            "export", *auth, "--project", "Launch", "--out", str(bundle), "--interval", "0.2"
        )
        assert code == 0, out + err
        assert "2 videos match the manifest" in out
        assert not bundle.with_name("bundle.zip.part").exists()
        # Asked again for the same videos: the ready bundle is handed out, not rebuilt.
        again = tmp_path / "again.zip"
        code, out, err = run(
            "export", *auth, "--project", "Launch", "--out", str(again), "--interval", "0.2"
        )
        assert code == 0, out + err
        assert "the same bundle is ready, downloading it" in out
        assert again.read_bytes() == bundle.read_bytes()

    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert names[0] == "manifest.csv" and len(names) == 3
    assert verify_bundle(bundle).ok

    events = {}
    for request in receiver.requests:
        assert verify(secret, request["headers"], request["body"])
        body = json.loads(request["body"])
        events[body["type"]] = body["data"]
    assert events["batch.completed"]["status"] == "succeeded"
    assert events["batch.completed"]["counts"] == {"succeeded": 2}
    assert events["export.ready"]["file_count"] == 2
    assert events["export.ready"]["download"].endswith("/download/")

    # The same files again: the library already holds them, nothing is stored twice.
    code, out, err = run(
        "submit", *auth, "--avatar", str(avatar), "--audio-dir", str(audios), "--project", "Launch",
    )  # fmt: skip
    assert code == 0, out + err
    assert "already in the library as “主播.mp4”" in err
    assert "already in the library as “问候 1.wav”" in err


@pytest.mark.django_db(transaction=True)
def test_download_resumes_with_range(live_server, live_org, make_outputs, tmp_path):
    from exports import services
    from exports.scope import scope_from_params

    _, _, member = live_org
    batch, _ = make_outputs(member, ["a", "b", "c"], size=200_000)
    export, _ = services.export_request(
        membership=member, scope=scope_from_params(member, {"batch": [batch.pk]})
    )  # built at once: tasks run inline in tests
    export.refresh_from_db()
    assert export.status == "ready"
    client = Client(live_server.url, _token(member), "acme")
    path, key = f"exports/{export.pk}/download/", f"export-{export.pk}"

    whole = client.download(path, tmp_path / "whole.part", key=key)
    data = whole.read_bytes()
    assert len(data) == export.zip_bytes
    state = json.loads((tmp_path / "whole.part.json").read_text())

    half = tmp_path / "half.part"
    half.write_bytes(data[: len(data) // 2])
    (tmp_path / "half.part.json").write_text(json.dumps(state))
    seen = []
    client.download(path, half, key=key, progress=lambda done, total: seen.append((done, total)))
    assert half.read_bytes() == data
    assert seen[0][0] > len(data) // 2  # it continued from the middle
    # A resumed transfer is the same download: audited once.
    assert AuditEvent.objects.filter(action="export.downloaded").count() == 1

    stale = tmp_path / "stale.part"
    stale.write_bytes(b"x" * 1000)
    (tmp_path / "stale.part.json").write_text(json.dumps({"key": key, "etag": '"old-etag"'}))
    client.download(path, stale, key=key)  # If-Range does not match: starts over
    assert stale.read_bytes() == data

    done = tmp_path / "done.part"
    done.write_bytes(data)
    (tmp_path / "done.part.json").write_text(json.dumps(state))
    client.download(path, done, key=key)  # 416: it was already complete
    assert done.read_bytes() == data


@pytest.mark.django_db(transaction=True)
def test_export_refuses_a_bundle_that_does_not_match_its_manifest(
    live_server, live_org, make_outputs, tmp_path
):
    _, _, member = live_org
    batch, outputs = make_outputs(member, ["good", "tampered"])
    Output.objects.filter(pk=outputs[1].pk).update(sha256="0" * 64)
    out = tmp_path / "bundle.zip"
    code, _, err = run(
        "export", "--url", live_server.url, "--org", "acme", "--token", _token(member),
        "--project", batch.project.name, "--out", str(out), "--interval", "0.1",
    )  # fmt: skip
    assert code == 3
    assert "does not match its manifest.csv" in err and "tampered" in err
    assert not out.exists() and not out.with_name("bundle.zip.part").exists()


def test_verify_bundle_reports_every_problem(tmp_path):
    good = tmp_path / "good.zip"
    payload = b"video bytes"
    import hashlib

    sha = hashlib.sha256(payload).hexdigest()
    manifest = f"\ufeffpath,bytes,sha256\r\n'-dash.mp4,{len(payload)},{sha}\r\n"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("manifest.csv", manifest.encode())
        archive.writestr("-dash.mp4", payload)
    assert verify_bundle(good).ok and verify_bundle(good).checked == 1

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("manifest.csv", f"path,bytes,sha256\r\na.mp4,3,{sha}\r\nb.mp4,1,x\r\n")
        archive.writestr("a.mp4", b"abc")
        archive.writestr("extra.mp4", b"?")
    problems = verify_bundle(bad).problems
    assert any("a.mp4: SHA-256" in p for p in problems)
    assert any("missing from the bundle: b.mp4" in p for p in problems)
    assert any("not in the manifest: extra.mp4" in p for p in problems)
    (tmp_path / "junk.zip").write_bytes(b"nope")
    assert "not a readable ZIP" in verify_bundle(tmp_path / "junk.zip").problems[0]


def test_configuration_errors_are_clear(monkeypatch, tmp_path):
    monkeypatch.delenv("HEYGEM_TOKEN", raising=False)
    monkeypatch.delenv("HEYGEM_ORG", raising=False)
    code, _, err = run("status")
    assert code == 2 and "HEYGEM_TOKEN" in err
    monkeypatch.setenv("HEYGEM_TOKEN", "hgm_x_y")
    code, _, err = run("status")
    assert code == 2 and "HEYGEM_ORG" in err
    monkeypatch.setenv("HEYGEM_ORG", "acme")
    code, _, err = run("status", "--url", "http://127.0.0.1:9")
    assert code == 2 and "Cannot reach" in err
    code, _, err = run(
        "submit", "--avatar", str(tmp_path / "none.mp4"), "--audio-dir", str(tmp_path),
        "--project", "P",
    )  # fmt: skip
    assert code == 2 and "does not exist" in err


@pytest.mark.django_db(transaction=True)
def test_api_errors_are_shown_with_their_reason(live_server, live_org, monkeypatch):
    _, _, member = live_org
    monkeypatch.setenv("HEYGEM_URL", live_server.url)
    monkeypatch.setenv("HEYGEM_ORG", "acme")
    code, _, err = run("status", "--token", "hgm_nope_nope")
    assert code == 2 and "not valid" in err and "HTTP 401" in err
    monkeypatch.setenv("HEYGEM_TOKEN", _token(member))
    code, _, err = run("status", "--batch", "999999")
    assert code == 2 and "HTTP 404" in err
    with pytest.raises(ApiError) as caught:
        Client(live_server.url, _token(member), "acme").post("projects/", {"name": ""})
    assert caught.value.status == 400 and "name" in caught.value.fields


def test_multipart_body_streams_its_parts(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * 3_000_000)
    body = MultipartBody(fields=[("kind", "audio")], files=[("file", big, 'we"ird\r\n.wav')])
    chunks = []
    while chunk := body.read(65536):
        assert len(chunk) <= 65536
        chunks.append(chunk)
    data = b"".join(chunks)
    assert len(data) == len(body) == body.sent
    assert b'filename="we%22ird.wav"' in data
    assert data.endswith(f"--{body.boundary}--\r\n".encode())
    assert Path(big).stat().st_size == 3_000_000
