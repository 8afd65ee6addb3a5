"""Output options in the render's single encode (inference/media/outputs.py): resolution,
quality preset, watermark and burned-in subtitles, checked on real frames encoded by the
render's own FrameWriter; the defaults leave the encode exactly as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import get_engine
from inference.ffmpeg_bin import find_ffmpeg
from inference.media import FrameReader, FrameWriter, encode_args, hash_file, probe
from inference.media.outputs import (
    BurnedSubtitles,
    OutputOptionError,
    OutputOptions,
    Watermark,
    burn_line_width,
    find_cjk_font,
    scaled_size,
)
from inference.subtitles import Cue, SubtitleError, cues_from_timings, write_srt
from inference.tts import synthesize
from tests.media import make_avatar


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [find_ffmpeg(), "-hide_banner", "-v", "error", "-y", *args], check=True, capture_output=True
    )


def _video(path: Path, size: str = "320x180", source: str = "color=c=0x406080") -> Path:
    """2 s of ``source`` (a lavfi video source) at ``size``, 25 fps."""
    lavfi = f"{source}{':' if '=' in source else '='}size={size}:rate=25:duration=2"
    _ffmpeg(
        "-f", "lavfi", "-i", lavfi,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def _encode(src: Path, out: Path, options: OutputOptions | None = None, **kw: object) -> Path:
    """Encode ``src``'s frames exactly as a render does: raw frames into a FrameWriter."""
    with FrameReader(src) as reader:
        writer = FrameWriter(out, reader.width, reader.height, 25, options=options, **kw)
        with writer:
            for batch in reader.batches(16):
                writer.write(batch)
    return out


def _frame(path: Path, at: float) -> np.ndarray:
    """The RGB frame shown at ``at`` seconds, as an ``(h, w, 3)`` int array."""
    info = probe(path)
    cmd = [find_ffmpeg(), "-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    return np.frombuffer(proc.stdout, np.uint8).reshape(info.height, info.width, 3).astype(int)


def _png(path: Path, size: tuple[int, int] = (100, 50), color=(255, 0, 255, 255)) -> Path:
    Image.new("RGBA", size, color).save(path)
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of one flat colour, 320x180: anything drawn on it shows."""
    return _video(tmp_path_factory.mktemp("plain") / "plain.mp4")


@pytest.fixture(scope="module")
def plain_encoded(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plain`` through the default encode: the reference the options are compared with."""
    return _encode(plain, tmp_path_factory.mktemp("ref") / "ref.mp4")


# --------------------------------------------------------------------------- defaults


def test_default_options_change_nothing(tmp_path: Path, plain: Path) -> None:
    audio = tmp_path / "a.wav"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=2", str(audio))
    for kw in ({}, {"audio": audio, "duration": 1.5}):
        before = encode_args(tmp_path / "o.mp4", 320, 180, "25", **kw)
        for options in (OutputOptions(), OutputOptions(resolution="source", quality="standard")):
            assert options.is_default
            assert encode_args(tmp_path / "o.mp4", 320, 180, "25", options=options, **kw) == before
    # The file itself is the same, byte for byte.
    a = _encode(plain, tmp_path / "a.mp4", audio=audio)
    b = _encode(plain, tmp_path / "b.mp4", OutputOptions(), audio=audio)
    assert hash_file(a).sha256 == hash_file(b).sha256


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((1920, 1080), "720p", (1280, 720)),
        ((1280, 720), "720p", (1280, 720)),
        ((1080, 1920), "480p", (480, 854)),
        ((300, 200), "480p", (720, 480)),
        ((256, 256), "1080p", (1080, 1080)),
        ((642, 360), "source", (642, 360)),
    ],
)
def test_scaled_size_keeps_the_aspect_with_even_sides(
    size: tuple[int, int], resolution: str, expected: tuple[int, int]
) -> None:
    w, h = scaled_size(*size, resolution)
    assert (w, h) == expected
    assert w % 2 == 0 and h % 2 == 0
    assert w / h == pytest.approx(size[0] / size[1], rel=0.005)


def test_encode_at_a_resolution(tmp_path: Path, plain: Path) -> None:
    out = _encode(plain, tmp_path / "480.mp4", OutputOptions(resolution="480p"))
    info = probe(out)
    assert (info.width, info.height) == (854, 480)
    portrait = _video(tmp_path / "portrait.mp4", size="180x320")
    info = probe(_encode(portrait, tmp_path / "p720.mp4", OutputOptions(resolution="720p")))
    assert (info.width, info.height) == (720, 1280)


# --------------------------------------------------------------------------- quality


def test_quality_presets(tmp_path: Path) -> None:
    busy = _video(tmp_path / "busy.mp4", source="testsrc2")
    sizes = {
        quality: _encode(busy, tmp_path / f"{quality}.mp4", OutputOptions(quality=quality))
        .stat()
        .st_size
        for quality in ("draft", "standard", "high")
    }
    assert sizes["draft"] < sizes["standard"] < sizes["high"]
    args = encode_args(tmp_path / "x.mp4", 320, 180, "25", options=OutputOptions(quality="high"))
    assert args[args.index("-crf") + 1] == "17" and args[args.index("-preset") + 1] == "medium"


# --------------------------------------------------------------------------- watermark


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_watermark_sits_in_its_corner(
    tmp_path: Path, plain: Path, plain_encoded: Path, corner: str
) -> None:
    mark = Watermark(_png(tmp_path / "logo.png"), corner=corner, opacity=1.0, scale=0.25)
    out = _encode(plain, tmp_path / "wm.mp4", OutputOptions(watermark=mark))
    diff = np.abs(_frame(out, 1.0) - _frame(plain_encoded, 1.0)).sum(axis=2)
    h, w = diff.shape
    rows = slice(0, h // 4) if corner.startswith("top") else slice(h - h // 4, h)
    cols = slice(0, w // 4) if corner.endswith("left") else slice(w - w // 4, w)
    far_rows = slice(h - h // 4, h) if corner.startswith("top") else slice(0, h // 4)
    far_cols = slice(w - w // 4, w) if corner.endswith("left") else slice(0, w // 4)
    changed = diff[rows, cols] > 60
    # 0.25 x 180 = 45 px wide, 22 px high: that many pixels turn magenta in the corner ...
    assert changed.sum() > 0.8 * 45 * 22
    # ... a margin away from the edges ...
    assert not changed[0 if corner.startswith("top") else -1].any()
    assert not changed[:, 0 if corner.endswith("left") else -1].any()
    # ... and nothing changes in the opposite corner.
    assert diff[far_rows, far_cols].max() <= 6


def test_a_tall_watermark_is_fitted_inside_the_frame(tmp_path: Path) -> None:
    options = OutputOptions(
        watermark=Watermark(_png(tmp_path / "tall.png", (20, 400)), corner="bottom-left", scale=0.5)
    )
    _, graph = options.filters(320, 180, first_input=1)
    assert graph is not None
    # 180 - 2 x 5 px of margin = 170 px high at most, so 8 px wide; at x = 5, y = 5.
    assert "scale=8:170" in graph and "overlay=x=5:y=5" in graph


def test_watermark_opacity_blends(tmp_path: Path, plain: Path, plain_encoded: Path) -> None:
    logo = _png(tmp_path / "logo.png")
    changes = []
    for opacity in (1.0, 0.5):
        options = OutputOptions(watermark=Watermark(logo, corner="top-left", opacity=opacity))
        frame = _frame(_encode(plain, tmp_path / f"{opacity}.mp4", options), 1.0)
        changes.append(
            np.abs(frame[15:30, 15:40] - _frame(plain_encoded, 1.0)[15:30, 15:40]).mean()
        )
    assert 0.35 < changes[1] / changes[0] < 0.65


# --------------------------------------------------------------------------- subtitles


def test_burned_subtitles_show_in_the_subtitle_band(
    tmp_path: Path, plain: Path, plain_encoded: Path
) -> None:
    assert find_cjk_font() is not None, "fonts-noto-cjk is missing (make setup installs it)"
    srt = write_srt([Cue(0.5, 1.5, "你好，各位经销商\nWelcome, dealers")], tmp_path / "a.srt")
    options = OutputOptions(subtitles=BurnedSubtitles(srt))
    args = encode_args(tmp_path / "x.mp4", 320, 180, "25", options=options)
    assert args.count("-filter_complex") == 1 and "subtitles=" in " ".join(args)
    out = _encode(plain, tmp_path / "subs.mp4", options)
    during = np.abs(_frame(out, 1.0) - _frame(plain_encoded, 1.0)).sum(axis=2)
    after = np.abs(_frame(out, 1.8) - _frame(plain_encoded, 1.8)).sum(axis=2)
    band = slice(int(180 * 0.6), 180)
    assert (during[band] > 100).sum() > 300  # the two lines of text
    assert during[: int(180 * 0.4)].max() <= 6  # nothing above the band
    assert after.max() <= 6  # and nothing once the cue is over


def test_long_chinese_lines_are_wrapped_inside_a_portrait_frame(tmp_path: Path) -> None:
    portrait = _video(tmp_path / "portrait.mp4", size="360x640")
    reference = _encode(portrait, tmp_path / "ref.mp4")
    line = (
        "各位经销商朋友大家好欢迎来到我们的新车发布会"
        + "今天我们将为您介绍三款全新车型以及专属的优惠政策"
    )
    srt = write_srt([Cue(0.0, 2.0, line)], tmp_path / "long.srt")
    out = _encode(portrait, tmp_path / "subs.mp4", OutputOptions(subtitles=BurnedSubtitles(srt)))
    diff = np.abs(_frame(out, 1.0) - _frame(reference, 1.0)).sum(axis=2)
    changed_rows = np.flatnonzero((diff > 100).any(axis=1))
    assert changed_rows.size and changed_rows.min() > 640 * 0.6  # in the subtitle band
    assert changed_rows.max() - changed_rows.min() > 40  # over several lines: wrapped
    assert diff[:, :8].max() <= 6 and diff[:, -8:].max() <= 6  # and nothing runs off the sides
    assert burn_line_width(1280, 720) > burn_line_width(720, 1280) >= 20


def test_subtitle_paths_with_filter_graph_characters(tmp_path: Path, plain: Path) -> None:
    """encode_args used alone (as bench/render.py does) escapes the path for ffmpeg."""
    folder = tmp_path / "dealer's subs: [north], east; west\\x"
    folder.mkdir()
    srt = write_srt([Cue(0.0, 2.0, "你好 Hello")], folder / "a.srt")
    out = tmp_path / "escaped.mp4"
    options = OutputOptions(subtitles=BurnedSubtitles(srt))
    with FrameReader(plain) as reader:
        frames = b"".join(batch.tobytes() for batch in reader.batches(16))
    args = encode_args(out, 320, 180, "25", options=options)
    proc = subprocess.run(args, input=frames, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert probe(out).duration == pytest.approx(2.0, abs=0.1)
    assert np.abs(_frame(out, 1.0)[150:] - np.array([0x40, 0x60, 0x80])).max() > 100


def test_watermark_and_subtitles_in_a_render(tmp_path: Path) -> None:
    """Script -> speech -> subtitles -> a warp render at 480p with a watermark and burned
    subtitles, all in the render's one encode."""
    avatar = make_avatar(tmp_path / "avatar.mp4", seconds=1.0)
    speech = synthesize("Hello dealers. Welcome!", "espeak:en-us", out_path=tmp_path / "s.wav")
    srt = write_srt(cues_from_timings(speech.sentences), tmp_path / "s.srt")
    options = OutputOptions(
        resolution="480p",
        quality="draft",
        watermark=Watermark(_png(tmp_path / "logo.png"), corner="top-left", opacity=1.0),
        subtitles=BurnedSubtitles(srt),
    )
    result = get_engine("warp").render(avatar, speech.path, tmp_path / "out.mp4", output=options)
    assert (result.width, result.height) == (480, 480)
    assert result.duration == pytest.approx(speech.duration, abs=0.1)
    frame = _frame(result.path, 0.5)
    corner = frame[20:40, 20:100]  # 0.2 x 480 = 96 px wide, from 14 px in
    assert np.abs(corner - np.array([255, 0, 255])).max() < 40


# --------------------------------------------------------------------------- refusals


def test_bad_options_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(OutputOptionError, match="resolution must be one of source, 1080p") as e:
        OutputOptions(resolution="4k")
    assert e.value.code == "bad_resolution"
    with pytest.raises(OutputOptionError, match="quality must be one of draft"):
        OutputOptions(quality="ultra")
    logo = _png(tmp_path / "logo.png")
    with pytest.raises(OutputOptionError, match="corner must be one of top-left"):
        Watermark(logo, corner="middle")
    with pytest.raises(OutputOptionError, match="opacity must be between 0 and 1"):
        Watermark(logo, opacity=1.5)
    jpeg = tmp_path / "logo.jpg"
    Image.new("RGB", (40, 20), (255, 0, 0)).save(jpeg)
    with pytest.raises(OutputOptionError, match="must be a PNG image \\(this one is JPEG\\)") as e:
        OutputOptions(watermark=Watermark(jpeg)).check()
    assert e.value.code == "watermark_not_png"
    text = tmp_path / "logo.png.txt"
    text.write_text("not an image")
    with pytest.raises(OutputOptionError, match="not a readable image"):
        OutputOptions(watermark=Watermark(text)).check()
    with pytest.raises(OutputOptionError, match="watermark image is missing"):
        OutputOptions(watermark=Watermark(tmp_path / "gone.png")).check()
    bad_srt = tmp_path / "bad.srt"
    bad_srt.write_text("1\n00:00:01 --> 00:00:02\nno milliseconds\n", encoding="utf-8")
    with pytest.raises(SubtitleError, match="line 2: expected a timing line"):
        OutputOptions(subtitles=BurnedSubtitles(bad_srt)).check()
