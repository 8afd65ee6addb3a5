import os

import pytest

from accounts.permissions import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

os.environ.setdefault("DJANGO_ENV", "test")


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
