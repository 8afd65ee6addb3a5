import pytest

from accounts.permissions import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` need PostgreSQL; elsewhere they are skipped with a reason."""
    from django.conf import settings

    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    if vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL: runs in the scale-out pass")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_ROOT = tmp_path / "exports"


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
    """A copy of a sample file as an upload would arrive (a temp file and a browser name)."""
    import shutil

    from jobs.services import UploadedMedia

    def make(sample: str, name: str | None = None):
        target = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}"
        shutil.copy(media_dir / sample, target)
        return UploadedMedia(target, name or sample)

    return make


@pytest.fixture
def make_outputs(db, settings):
    """Finished outputs with real files (random bytes) and correct rows, no render needed."""
    import hashlib
    import os
    import zlib

    from jobs import storage
    from jobs.models import Asset, Batch, Output, Project, RenderJob, Tag

    counter = {"n": 0}

    def make(membership, names, *, project=None, batch_name="", tags=(), size=2048):
        org = membership.organization
        project = project or Project.objects.create(organization=org, name=f"Project {org.slug}")
        batch = Batch.objects.create(project=project, name=batch_name, engine="warp")
        for tag in tags:
            batch.tags.add(Tag.objects.get_or_create(organization=org, name=tag)[0])
        common = {"organization": org, "duration": 1.0, "bytes": 1, "sha256": "0" * 64}
        avatar = Asset.objects.create(
            kind="avatar", file="assets/x.mp4", original_name="主播.mp4", **common
        )
        outputs = []
        for name in names:
            counter["n"] += 1
            audio = Asset.objects.create(
                kind="audio", file="assets/y.wav", original_name=f"{name}.wav", **common
            )
            job = RenderJob.objects.create(
                batch=batch, avatar=avatar, audio=audio, engine="warp", status="succeeded"
            )
            data = os.urandom(size) + str(counter["n"]).encode()
            rel = f"outputs/{org.pk}/{batch.pk}/job{job.pk}-a1.mp4"
            storage.media_path(rel).parent.mkdir(parents=True, exist_ok=True)
            storage.media_path(rel).write_bytes(data)
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
