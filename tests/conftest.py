import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from accounts.permissions import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.stack import S3_ENV


def pytest_configure(config):
    """``response.context`` for the Jinja2 pages, as Django's test runner gives it for its own
    template language: each top-level render sends ``template_rendered``."""
    from django.template.backends import jinja2 as backend
    from django.test.signals import template_rendered

    render = backend.Template.render

    def instrumented(self, context=None, request=None):
        context = {} if context is None else context
        html = render(self, context, request)
        template_rendered.send(sender=self, template=self, context=context)
        return html

    backend.Template.render = instrumented


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` need PostgreSQL; elsewhere they are skipped with a reason."""
    from django.conf import settings

    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    if vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL: runs in the scale-out pass")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto_server on loopback for the whole run: S3 without the internet."""
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        pytest.fail(
            "moto_server is missing: make test installs requirements-dev.txt (moto[server])"
        )
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    for key, value in S3_ENV.items():
        os.environ.setdefault(key, value)  # read by boto3 here and by qcluster children
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


#: The scale-out pass (make test-scaleout) sets this: media and bundles then live in S3.
S3_STACK = os.environ.get("HEYGEM_TEST_STORAGE", "local") == "s3"


def empty_bucket(client, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


@pytest.fixture
def s3_bucket(settings, request):
    """A fresh bucket for this test, emptied and removed afterwards."""
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"heygem-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket, endpoint
    empty_bucket(client, bucket)
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_bundles(settings, s3_bucket):
    """Bundles streamed into the test's bucket (5 MiB parts, S3's smallest)."""
    client, bucket, endpoint = s3_bucket
    settings.EXPORT_STORAGE = "s3"
    settings.EXPORT_S3_BUCKET = bucket
    settings.EXPORT_S3_ENDPOINT_URL = endpoint
    settings.EXPORT_S3_PART_BYTES = 5 * 1024 * 1024
    return client


@pytest.fixture
def s3_media(settings, s3_bucket, s3_bundles):
    """Media and bundles in the test's bucket, as on the scale-out stack."""
    client, bucket, endpoint = s3_bucket
    settings.MEDIA_STORAGE = "s3"
    settings.MEDIA_S3_BUCKET = bucket
    settings.MEDIA_S3_ENDPOINT_URL = endpoint
    return client, bucket


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path, request):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.RENDER_SCRATCH_DIR = tmp_path / "scratch"
    if S3_STACK and "local_storage" not in request.keywords:
        request.getfixturevalue("s3_media")


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme Media", slug="acme")


@pytest.fixture
def other_org(db):
    """A second organization in every test, to catch leaks across tenants."""
    return OrganizationFactory(name="Rival Films", slug="rival")


@pytest.fixture
def make_member(db):
    def make(organization, role=Role.MEMBER, email=None):
        kwargs = {"organization": organization, "role": role}
        if email:
            kwargs["user"] = UserFactory(email=email)
        return MembershipFactory(**kwargs)

    return make


@pytest.fixture
def owner(org, make_member):
    return make_member(org, Role.OWNER, "owner@acme.test")


@pytest.fixture
def admin(org, make_member):
    return make_member(org, Role.ADMIN, "admin@acme.test")


@pytest.fixture
def member(org, make_member):
    return make_member(org, Role.MEMBER, "member@acme.test")


@pytest.fixture
def viewer(org, make_member):
    return make_member(org, Role.VIEWER, "viewer@acme.test")


@pytest.fixture
def outsider(other_org, make_member):
    return make_member(other_org, Role.OWNER, "boss@rival.test")


@pytest.fixture
def login(client):
    def as_user(membership_or_user):
        user = getattr(membership_or_user, "user", membership_or_user)
        client.force_login(user)
        return client

    return as_user


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    """Tiny real media, made once per test session."""
    from tests import media

    folder = tmp_path_factory.mktemp("media-src")
    media.make_avatar(folder / "face.mp4")
    media.make_audio(folder / "speech.wav")
    media.make_audio(folder / "long.wav", seconds=1.6)
    media.make_faceless_video(folder / "noface.mp4")
    media.make_video_with_sound(folder / "clip_with_sound.mp4")
    return folder


@pytest.fixture
def upload(media_dir, tmp_path):
    """A copy of a sample file as an upload would arrive (a temp file and a browser name).

    ``variant`` makes other bytes with the same media (the library keeps one entry per
    content, so tests that need several entries of one sample ask for variants)."""
    import shutil

    from jobs.services import UploadedMedia
    from tests.media import variant_of

    def make(sample: str, name: str | None = None, *, variant: int | None = None):
        target = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}"
        if variant is None:
            shutil.copy(media_dir / sample, target)
        else:
            variant_of(media_dir / sample, target, variant)
        return UploadedMedia(target, name or sample)

    return make


@pytest.fixture
def make_outputs(db, settings):
    """Finished outputs with real files (random bytes) and correct rows, no render needed."""
    import hashlib
    import os
    import zlib

    from core.storage import media as storage
    from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag

    counter = {"n": 0}

    def make(membership, names, *, project=None, batch_name="", tags=(), size=2048):
        org = membership.organization
        project = project or Project.objects.create(organization=org, name=f"Project {org.slug}")
        batch = Batch.objects.create(project=project, name=batch_name, engine="warp")
        for tag in tags:
            batch.tags.add(Tag.objects.get_or_create(organization=org, name=tag)[0])
        common = {"organization": org, "duration": 1.0, "bytes": 1}
        # Each file distinct content, as the library holds one entry per content.
        content = lambda: f"{counter['n']:064x}"  # noqa: E731
        counter["n"] += 1
        avatar = Asset.objects.create(
            kind="avatar", file="assets/x.mp4", original_name="主播.mp4", sha256=content(),
            **common,
        )  # fmt: skip
        outputs = []
        for name in names:
            counter["n"] += 1
            audio = Asset.objects.create(
                kind="audio", file="assets/y.wav", original_name=f"{name[:196]}.wav",
                sha256=content(), **common,
            )  # fmt: skip
            job = RenderJob.objects.create(
                batch=batch, avatar=avatar, audio=audio, engine="warp", status="succeeded"
            )
            data = os.urandom(size) + str(counter["n"]).encode()
            rel = f"outputs/{org.pk}/{batch.pk}/job{job.pk}-a1.mp4"
            storage.save_bytes(rel, data)
            outputs.append(
                Output.objects.create(
                    job=job,
                    file=rel,
                    name=name,
                    bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    crc32=zlib.crc32(data),
                    duration=1.5,
                    width=256,
                    height=256,
                )
            )
        return batch, outputs

    return make
