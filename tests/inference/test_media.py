"""Probing, frame pipes, thumbnails and hashed atomic outputs, on real media."""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import ffmpeg_bin
from inference.errors import MediaError
from inference.media import (
    AtomicOutput,
    FrameReader,
    FrameWriter,
    HashingWriter,
    hash_file,
    make_thumbnail,
    probe,
    yuv_planes,
)
from tests.inference.conftest import ffmpeg


@pytest.fixture
def no_ffprobe(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine that only has imageio-ffmpeg's binary: ffprobe cannot be found."""
    monkeypatch.setattr(ffmpeg_bin, "find_ffprobe", lambda: None)


def test_probe_video(avatar: Path) -> None:
    info = probe(avatar)
    assert info.has_video and not info.has_audio
    assert (info.width, info.height) == (256, 256)
    assert info.video_codec == "h264"
    assert info.fps == pytest.approx(25.0)
    assert info.frame_rate == "25/1"
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.frame_count == 50
    assert "mp4" in info.format_name
    assert info.size_bytes == avatar.stat().st_size


def test_probe_audio_and_video_with_sound(speech: Path, speech_video: Path) -> None:
    audio = probe(speech)
    assert audio.has_audio and not audio.has_video
    assert audio.sample_rate == 16000 and audio.channels == 1
    assert audio.audio_codec == "pcm_s16le"
    both = probe(speech_video)
    assert both.has_audio and both.has_video
    assert both.audio_codec == "aac"


@pytest.mark.usefixtures("no_ffprobe")
def test_probe_without_ffprobe_matches_ffprobe(
    avatar: Path, speech: Path, speech_video: Path, odd_avatar: Path
) -> None:
    for path in (avatar, speech, speech_video, odd_avatar):
        info = probe(path)
        assert info.prober == "ffmpeg"
        with_ffprobe = _probe_with_real_ffprobe(path)
        for field in (
            "has_video",
            "has_audio",
            "video_codec",
            "audio_codec",
            "width",
            "height",
            "fps",
            "frame_rate",
            "sample_rate",
            "channels",
        ):
            assert getattr(info, field) == getattr(with_ffprobe, field), field
        assert info.duration == pytest.approx(with_ffprobe.duration, abs=0.02)


def _probe_with_real_ffprobe(path: Path) -> object:
    ffprobe = ffmpeg_bin.shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("no ffprobe on this machine to compare with")
    from inference.media import _probe_with_ffprobe

    return _probe_with_ffprobe(path, ffprobe, path.stat().st_size, 30)


def test_imageio_ffmpeg_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, avatar: Path, speech: Path
) -> None:
    """With nothing on PATH, the imageio-ffmpeg binary probes, decodes and encodes."""
    monkeypatch.setenv("PATH", str(tmp_path))
    ffmpeg_bin.clear_cache()
    try:
        assert ffmpeg_bin.find_ffprobe() is None
        assert ffmpeg_bin.ffmpeg_source() == "imageio-ffmpeg"
        info = probe(avatar)
        assert info.prober == "ffmpeg" and (info.width, info.height) == (256, 256)
        with FrameReader(avatar, info=info) as reader:
            first = next(reader.batches(4))
            out = tmp_path / "copy.mp4"
            with FrameWriter(out, reader.width, reader.height, 25, audio=speech) as writer:
                writer.write(first)
        copy = probe(out)
        assert copy.has_video and copy.has_audio
    finally:
        monkeypatch.undo()
        ffmpeg_bin.clear_cache()


def _truncated_faststart(src: Path, tmp_path: Path) -> Path:
    fast = tmp_path / "fast.mp4"
    ffmpeg("-i", str(src), "-c", "copy", "-movflags", "+faststart", str(fast))
    cut = tmp_path / "fast_cut.mp4"
    data = fast.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.mark.parametrize("with_ffprobe", [True, False], ids=["ffprobe", "ffmpeg-only"])
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("empty", "empty"),
        ("text", "not a readable audio or video file"),
        ("random", "not a readable audio or video file"),
        ("truncated", "incomplete"),
        ("png", "not supported"),
        ("missing", "does not exist"),
    ],
)
def test_probe_rejects_bad_files(
    kind: str,
    expected: str,
    with_ffprobe: bool,
    tmp_path: Path,
    speech_video: Path,
    astronaut_png: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not with_ffprobe:
        monkeypatch.setattr(ffmpeg_bin, "find_ffprobe", lambda: None)
    path = tmp_path / f"upload_{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("name,size\nhello.mp4,12\n" * 50)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, np.uint8).tobytes())
    elif kind == "truncated":  # moov at the end (ffmpeg's default) and the end cut off
        data = speech_video.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "png":
        path.write_bytes(astronaut_png.read_bytes())
    with pytest.raises(MediaError) as info:
        probe(path)
    message = str(info.value)
    assert expected in message
    assert str(tmp_path) not in message  # messages are for people, paths are for logs
    assert message.endswith(".")


def test_verify_catches_truncated_faststart(tmp_path: Path, speech_video: Path) -> None:
    cut = _truncated_faststart(speech_video, tmp_path)
    probe(cut)  # the index is intact, so a plain probe cannot tell
    with pytest.raises(MediaError, match=r"incomplete|truncated"):
        probe(cut, verify=True)
    assert probe(speech_video, verify=True).has_video


@pytest.mark.parametrize("with_ffprobe", [True, False], ids=["ffprobe", "ffmpeg-only"])
def test_rotated_phone_video(
    with_ffprobe: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A portrait clip stored landscape plus a rotation flag is reported and read upright."""
    landscape = tmp_path / "landscape.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=320x240:d=1:r=25", "-pix_fmt", "yuv420p", str(landscape))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(landscape), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    if not with_ffprobe:
        monkeypatch.setattr(ffmpeg_bin, "find_ffprobe", lambda: None)
    info = probe(rotated)
    assert (info.width, info.height) == (240, 320)
    assert info.rotation in (90, 270)
    with FrameReader(rotated, info=info) as reader:
        assert sum(len(b) for b in reader.batches(8)) == 25
        assert (reader.width, reader.height) == (240, 320)


def test_frame_reader_batches(avatar: Path) -> None:
    with FrameReader(avatar) as reader:
        assert reader.frame_bytes == 256 * 256 * 3 // 2
        sizes = [len(b) for b in reader.batches(16)]
    assert sizes == [16, 16, 16, 2]
    assert reader.frames_read == 50


def test_frame_reader_odd_size_is_cropped_even(odd_avatar: Path) -> None:
    info = probe(odd_avatar)
    assert (info.width, info.height) == (255, 257)
    with FrameReader(odd_avatar, info=info) as reader:
        assert (reader.width, reader.height) == (254, 256)
        frames = next(reader.batches(2))
    y, u, v = yuv_planes(frames, 254, 256)
    assert y.shape == (2, 256, 254) and u.shape == v.shape == (2, 128, 127)
    assert 60 < y.mean() < 200  # real picture, not garbage or padding


def test_frame_writer_round_trip(tmp_path: Path, avatar: Path, speech: Path) -> None:
    out = tmp_path / "round.mp4"
    with FrameReader(avatar) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(8)])
    audio_seconds = probe(speech).duration
    with FrameWriter(out, 256, 256, "25", audio=speech, duration=1.0) as writer:
        writer.write(frames)
    info = probe(out)
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.duration == pytest.approx(min(1.0, audio_seconds), abs=0.05)
    with FrameReader(out, info=info) as reader:
        back = np.concatenate([b.copy() for b in reader.batches(8)])
    assert len(back) == 25
    diff = np.abs(back.astype(int) - frames[:25].astype(int))
    assert diff.mean() < 2.0  # codec noise only


def test_frame_writer_rejects_partial_frames(tmp_path: Path) -> None:
    with FrameWriter(tmp_path / "x.mp4", 16, 16, 25) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros(100, np.uint8))
        writer.write(np.zeros((1, 16 * 16 * 3 // 2), np.uint8))


def test_make_thumbnail(tmp_path: Path, avatar: Path, odd_avatar: Path) -> None:
    out = make_thumbnail(avatar, tmp_path / "thumb.jpg")
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (320, 320)
    out = make_thumbnail(odd_avatar, tmp_path / "odd.png", width=100)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (100, 100)
    assert not list(tmp_path.glob(".*.part"))


def test_thumbnail_of_audio_is_refused(tmp_path: Path, speech: Path) -> None:
    with pytest.raises(MediaError, match="no video"):
        make_thumbnail(speech, tmp_path / "t.jpg")
    assert not list(tmp_path.iterdir())


def test_hash_file_matches_hashlib_and_zlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    digest = hash_file(path)
    assert digest.bytes == len(data)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.crc32 == zlib.crc32(data)


def test_hashing_writer() -> None:
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    for part in (b"hello ", b"", b"world" * 1000):
        writer.write(part)
    data = sink.getvalue()
    digest = writer.digest()
    assert (digest.bytes, digest.sha256, digest.crc32) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        zlib.crc32(data),
    )


def test_atomic_output_commit_and_discard(tmp_path: Path) -> None:
    final = tmp_path / "out" / "video.mp4"
    with AtomicOutput(final) as target:
        target.path.write_bytes(b"abc")
        assert not final.exists()  # nothing under the final name until commit
        digest = target.commit()
    assert final.read_bytes() == b"abc"
    assert digest.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert digest.crc32 == zlib.crc32(b"abc")

    other = tmp_path / "out" / "failed.mp4"
    with pytest.raises(RuntimeError), AtomicOutput(other) as target:
        target.path.write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert not other.exists()
    assert sorted(p.name for p in final.parent.iterdir()) == ["video.mp4"]
