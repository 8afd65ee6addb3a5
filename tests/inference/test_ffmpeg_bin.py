"""One locator for ffmpeg, used by renders and by the start-up check alike."""

import shutil

import pytest

from inference.errors import InferenceError
from inference.ffmpeg_bin import locate_ffmpeg


def test_configured_binary_wins(monkeypatch):
    system = shutil.which("ffmpeg") or locate_ffmpeg("")
    monkeypatch.setenv("FFMPEG_BINARY", system)
    assert locate_ffmpeg() == system
    assert locate_ffmpeg(system) == system


def test_configured_binary_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("FFMPEG_BINARY", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(InferenceError, match="FFMPEG_BINARY"):
        locate_ffmpeg()
    (tmp_path / "not-executable").write_text("x")
    with pytest.raises(InferenceError, match="not an executable"):
        locate_ffmpeg(str(tmp_path / "not-executable"))


def test_unset_falls_back_to_path_or_imageio(monkeypatch):
    monkeypatch.delenv("FFMPEG_BINARY", raising=False)
    assert "ffmpeg" in locate_ffmpeg()
