"""Settings from the environment, production refusals, and the start-up system checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import WARNING, run_checks
from django.core.exceptions import ImproperlyConfigured

from heygem_site import checks
from heygem_site.env import env
from inference import ffmpeg_bin

ROOT = Path(__file__).resolve().parent.parent
PROD = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "test-secret-" + "x" * 50,
    "ALLOWED_HOSTS": "heygem.example.com",
}


def _django(env_vars: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_ENV", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env_vars},
        capture_output=True,
        text=True,
        timeout=300,
    )


class TestEnvHelper:
    def test_casts_and_defaults(self, monkeypatch):
        monkeypatch.setenv("X_BOOL", "yes")
        monkeypatch.setenv("X_LIST", "a, b,,c")
        monkeypatch.setenv("X_INT", "42")
        assert env("X_BOOL", False, cast=bool) is True
        assert env("X_LIST", [], cast=list) == ["a", "b", "c"]
        assert env("X_INT", 0, cast=int) == 42
        assert env("X_MISSING", "d") == "d"

    def test_bad_values_name_the_variable(self, monkeypatch):
        monkeypatch.setenv("X_INT", "many")
        with pytest.raises(ImproperlyConfigured, match="X_INT"):
            env("X_INT", 0, cast=int)
        monkeypatch.setenv("X_BOOL", "perhaps")
        with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
            env("X_BOOL", False, cast=bool)

    def test_required_in_production(self, monkeypatch):
        monkeypatch.setenv("DJANGO_ENV", "production")
        monkeypatch.delenv("X_SECRET", raising=False)
        with pytest.raises(ImproperlyConfigured, match="X_SECRET must be set"):
            env("X_SECRET", "dev", required_in_production=True)
        monkeypatch.setenv("DJANGO_ENV", "development")
        assert env("X_SECRET", "dev", required_in_production=True) == "dev"


class TestProductionSettings:
    @pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
    def test_requires_secret_and_hosts(self, missing):
        result = _django({k: v for k, v in PROD.items() if k != missing}, "check")
        assert result.returncode != 0
        assert f"{missing} must be set when DJANGO_ENV=production" in result.stderr

    def test_refuses_debug(self):
        result = _django({**PROD, "DEBUG": "true"}, "check")
        assert result.returncode != 0
        assert "DEBUG must not be on" in result.stderr

    def test_check_deploy_is_clean(self, tmp_path):
        result = _django(
            {**PROD, "VAR_DIR": str(tmp_path)}, "check", "--deploy", "--fail-level", "WARNING"
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.local_storage  # the checks of the local media and bundle folders
class TestSystemChecks:
    def _ids(self):
        """Problems only: warnings and errors (engines not set up are Info notes)."""
        return {e.id for e in run_checks(tags=["heygem"]) if e.level >= WARNING}

    def test_healthy(self):
        assert self._ids() == set()

    def test_unreadable_media_and_unwritable_export_folder(self, settings, tmp_path, monkeypatch):
        # Root may read and write any folder, so the permission answer is simulated here.
        settings.MEDIA_ROOT, settings.EXPORT_ROOT = tmp_path / "m", tmp_path / "e"
        monkeypatch.setattr(checks.os, "access", lambda path, mode: False)
        assert {"heygem.E001", "heygem.E002"} <= self._ids()

    def test_export_folder_that_cannot_be_created(self, settings, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        settings.EXPORT_ROOT = blocker / "exports"
        settings.MEDIA_ROOT = blocker / "media"
        assert {"heygem.E001", "heygem.E002"} <= self._ids()

    def test_no_ffmpeg(self, settings, monkeypatch, tmp_path):
        settings.FFMPEG_BINARY = ""
        monkeypatch.setattr(ffmpeg_bin.shutil, "which", lambda name: None)
        monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
        assert "heygem.E003" in self._ids()

    def test_face_models_missing_or_damaged(self, monkeypatch, tmp_path):
        from inference.face.models import MESH

        monkeypatch.setenv("FACE_MODEL_DIR", str(tmp_path))
        assert "heygem.E004" in self._ids()  # none installed there
        (tmp_path / MESH.name).write_bytes(b"not the model")
        errors = [e for e in run_checks(tags=["heygem"]) if e.id == "heygem.E004"]
        assert any("damaged" in e.msg for e in errors)

    def test_configured_ffmpeg_must_exist(self, settings, tmp_path):
        settings.FFMPEG_BINARY = str(tmp_path / "no-ffmpeg")
        assert "heygem.E003" in self._ids()

    def test_check_command_fails_loudly(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("x")
        result = _django({"VAR_DIR": str(tmp_path), "EXPORT_ROOT": str(blocker / "e")}, "check")
        assert result.returncode != 0
        assert "heygem.E002" in result.stderr and "export folder" in result.stderr


@pytest.mark.parametrize(
    ("redis_url", "engine"),
    [("redis://127.0.0.1:6379/15", "cached_db"), ("", "db")],
)
def test_sessions_are_read_from_redis_when_there_is_one(redis_url, engine):
    """With Redis the session comes from the cache (one query less per page); without it the
    cache is a table, so sessions stay in theirs."""
    done = _django(
        {"DJANGO_ENV": "development", "REDIS_URL": redis_url},
        "shell",
        "-v0",
        "-c",
        "from django.conf import settings; print(settings.SESSION_ENGINE)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"django.contrib.sessions.backends.{engine}"


@pytest.mark.django_db
def test_a_logged_out_session_is_gone_for_every_process(client, owner):
    """Logging out removes the session from the cache and the table (cached_db on Redis), so
    another web process holding the same cookie does not let it in either."""
    from importlib import import_module

    from django.conf import settings

    client.force_login(owner.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get("/o/acme/").status_code == 200
    client.post("/logout/")
    store = import_module(settings.SESSION_ENGINE).SessionStore
    assert store(session_key=key).load() == {}
    client.cookies[settings.SESSION_COOKIE_NAME] = key  # the old cookie, replayed
    response = client.get("/o/acme/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
