"""Benchmark: the warp engine against a bare ffmpeg decode + encode of the same frames.

Generates (with ffmpeg, in a temp dir) a 30 s 1280x720 25 fps avatar video with a moving face
and 30 s of speech, renders it through the warp engine, and in the same process times
``ffmpeg decode -> yuv420p pipe -> ffmpeg encode`` with the engine's own decoder and encoder
arguments (libx264 veryfast, same CRF, AAC audio muxed the same, +faststart). Prints fps and
peak memory, and as its LAST line ``render/ffmpeg wall ratio: X.XX`` (quality bar: <= 1.5).

    python bench/render.py [--seconds 30] [--repeat 2] [--batch-size 16] [--media DIR]

Each side runs ``--repeat`` times, alternating, and the best wall time of each is compared
(the first run of anything pays for cold caches). The face is tracked during the render (no
prepared avatar), as for a job that renders an avatar once.

    python bench/render.py --pairs 2x5

renders a batch instead: A avatars (copies of the generated one, each prepared on its own) x B
audio tracks (the speech rotated by a different offset each). Each avatar is prepared once
(:meth:`Engine.prepare_avatar`) and its B videos use the prep; the LAST line compares the time
per video then with one video rendered alone, tracking the face inline.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference import ffmpeg_bin
from inference.engines import get_engine
from inference.engines.base import choose_fps
from inference.media import decode_args, encode_args, probe

WIDTH, HEIGHT, FPS = 1280, 720, 25

SPEECH = (
    "Good morning, and welcome to the quarterly review. Today we will look at how the team "
    "delivered on its promises, where we fell short, and what we will change next quarter. "
    "First, the numbers: sales grew by twelve percent, costs stayed flat, and our customers "
    "told us they love the new dashboard. Second, the projects: three shipped on time, one "
    "slipped by a week, and one was cancelled because the market moved. Finally, the people: "
    "we welcomed four new colleagues and said goodbye to two friends. Thank you all for your "
    "hard work, and let us make the next quarter even better than this one."
)


def run(cmd: list[str]) -> None:
    """Run a command, failing loudly with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")


def make_avatar(path: Path, seconds: float) -> None:
    """A 1280x720 clip: the astronaut's face on a plain backdrop, drifting slowly."""
    from PIL import Image
    from skimage import data

    still = path.with_suffix(".png")
    Image.fromarray(data.astronaut()).save(still)
    graph = (
        f"color=c=0x6a7b8c:s={WIDTH}x{HEIGHT}:r={FPS}:d={seconds}[bg];"
        "[1:v]scale=600:600,format=yuv420p[face];"
        "[bg][face]overlay=x='340+30*sin(2*PI*t/7)':y='60+10*sin(2*PI*t/5)':shortest=1,"
        "format=yuv420p[v]"
    )
    run(
        [
            ffmpeg_bin.find_ffmpeg(),
            "-hide_banner",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=16000:cl=mono",
            "-loop",
            "1",
            "-framerate",
            str(FPS),
            "-i",
            str(still),
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ]
    )


def make_speech(path: Path, seconds: float) -> None:
    """Speech from espeak-ng when installed (else tone bursts), exactly ``seconds`` long."""
    raw = path.with_name("speech_raw.wav")
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak:
        run([espeak, "-s", "165", "-w", str(raw), SPEECH])
        source = ["-stream_loop", "-1", "-i", str(raw)]
    else:
        expr = "0.5*sin(2*PI*220*t)*sin(2*PI*1.5*t)*gt(sin(2*PI*1.5*t),0)"
        source = ["-f", "lavfi", "-i", f"aevalsrc='{expr}':s=16000"]
    run(
        [
            ffmpeg_bin.find_ffmpeg(),
            "-hide_banner",
            "-y",
            *source,
            "-t",
            str(seconds),
            "-ac",
            "1",
            "-ar",
            "16000",
            str(path),
        ]
    )


def bare_ffmpeg(avatar: Path, audio: Path, out: Path, duration: float) -> float:
    """Wall seconds of decoder | encoder with the engine's own arguments, no Python between."""
    info = probe(avatar)
    fps = choose_fps(info)
    width, height = info.width - info.width % 2, info.height - info.height % 2
    dec = decode_args(avatar, width, height, fps=fps, source_size=(info.width, info.height))
    enc = encode_args(out, width, height, fps, audio=audio, duration=duration)
    start = time.perf_counter()
    decoder = subprocess.Popen(dec, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    encoder = subprocess.Popen(enc, stdin=decoder.stdout)
    assert decoder.stdout is not None
    decoder.stdout.close()  # the encoder holds the pipe now
    if encoder.wait() != 0 or decoder.wait() != 0:
        sys.exit("bare ffmpeg pipeline failed")
    return time.perf_counter() - start


class ChildMemory:
    """Samples the peak resident memory (VmHWM) of this process's child processes.

    ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` also counts what a child inherited from Python
    between fork and exec, so it mostly repeats the parent's size; /proc tells what ffmpeg
    itself used.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ChildMemory:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/status") as fh:
                        fields = dict(line.split(":", 1) for line in fh if ":" in line)
                except OSError:
                    continue
                if int(fields.get("PPid", "0").strip() or 0) != me:
                    continue
                hwm = int(fields.get("VmHWM", "0 kB").split()[0]) * 1024
                name = fields.get("Name", "?").strip()
                old = self.peaks.get(int(entry), (name, 0))[1]
                self.peaks[int(entry)] = (name, max(old, hwm))

    def largest(self) -> int:
        """Peak of the largest child seen, bytes."""
        return max((peak for _, peak in self.peaks.values()), default=0)


def cpu_seconds() -> tuple[float, float]:
    """``(this process, its waited-for children)`` user + system CPU seconds so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def rotated_speech(source: Path, path: Path, offset: float, seconds: float) -> Path:
    """``source`` started ``offset`` seconds in (wrapping round), ``seconds`` long."""
    run(
        [
            ffmpeg_bin.find_ffmpeg(), "-hide_banner", "-y", "-stream_loop", "-1",
            "-i", str(source), "-ss", f"{offset:.3f}", "-t", str(seconds), str(path),
        ]
    )  # fmt: skip
    return path


def load_note() -> str:
    """The machine's load averages (others' work moves the timings on a shared machine)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cpus"


def parse_pairs(text: str) -> tuple[int, int]:
    """``"AxB"`` -> ``(A, B)``."""
    try:
        a, b = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("--pairs takes AxB, e.g. 1x10") from None
    if a < 1 or b < 1:
        raise argparse.ArgumentTypeError("--pairs needs at least one avatar and one track")
    return a, b


def bench_pairs(
    pairs: tuple[int, int], work: Path, avatar: Path, audio: Path, seconds: float, batch: int | None
) -> None:
    """Render A avatars x B tracks with each avatar prepared once; compare with one video
    rendered alone (face tracked inline)."""
    n_avatars, n_tracks = pairs
    engine = get_engine("warp")
    avatars = [avatar]
    for k in range(1, n_avatars):
        avatars.append(work / f"avatar{k}.mp4")
        shutil.copy2(avatar, avatars[-1])
    tracks = [
        rotated_speech(audio, work / f"track{k}.wav", k * seconds / n_tracks, seconds)
        for k in range(n_tracks)
    ]
    run(["cat", *map(str, avatars), *map(str, tracks)])  # warm the page cache
    start = time.perf_counter()
    engine.render(avatars[0], tracks[0], work / "alone.mp4", batch_size=batch)
    alone = time.perf_counter() - start
    print(f"one video alone (face tracked inline): {alone:.2f} s, {engine.tracked_frames} frames")
    prepare_times, render_times = [], []
    for a, path in enumerate(avatars):
        start = time.perf_counter()
        prep = engine.prepare_avatar(path, out=work / f"avatar{a}.prep.npz", batch_size=batch)
        prepare_times.append(time.perf_counter() - start)
        size = (work / f"avatar{a}.prep.npz").stat().st_size
        print(
            f"avatar {a}: prepared in {prepare_times[-1]:.2f} s ({prep.frame_count} frames, "
            f"{size / 1e6:.2f} MB .npz)"
        )
        for t, track in enumerate(tracks):
            start = time.perf_counter()
            engine.render(path, track, work / f"out{a}_{t}.mp4", batch_size=batch, prepared=prep)
            render_times.append(time.perf_counter() - start)
            assert engine.tracked_frames == 0
        print(
            f"  {n_tracks} videos with the prepared avatar: "
            + ", ".join(f"{x:.2f}" for x in render_times[-n_tracks:])
            + " s"
        )
    videos = n_avatars * n_tracks
    per_video = sum(render_times) / videos
    with_prep = (sum(render_times) + sum(prepare_times)) / videos
    print(
        f"batch {n_avatars}x{n_tracks}: {sum(render_times):.2f} s of renders + "
        f"{sum(prepare_times):.2f} s of preparation for {videos} videos"
    )
    print(
        f"per video: prepared {per_video:.2f} s ({with_prep:.2f} s with its share of the "
        f"preparation) vs alone {alone:.2f} s: {alone / with_prep:.2f}x as fast"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--media",
        type=Path,
        default=None,
        help="folder for the generated media, reused when it already holds them (default: a "
        "temp folder, deleted afterwards)",
    )
    parser.add_argument(
        "--pairs",
        type=parse_pairs,
        default=None,
        metavar="AxB",
        help="render A avatars x B audio tracks, each avatar prepared once, instead of the "
        "comparison with ffmpeg",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_render_"))
    try:
        media = args.media or work
        media.mkdir(parents=True, exist_ok=True)
        avatar, audio = media / "avatar.mp4", media / "speech.wav"
        t0 = time.perf_counter()
        made = "reused"
        if not (avatar.exists() and audio.exists()):
            make_avatar(avatar, args.seconds)
            make_speech(audio, args.seconds)
            made = f"generated in {time.perf_counter() - t0:.1f} s"
        info = probe(avatar)
        duration = probe(audio).duration
        print(
            f"source: {info.width}x{info.height} @ {info.fps:g} fps, {info.duration:.2f} s, "
            f"{info.frame_count} frames; audio {duration:.2f} s ({made})"
        )
        print(
            f"ffmpeg: {ffmpeg_bin.find_ffmpeg()} ({ffmpeg_bin.ffmpeg_source()}), "
            f"cpus: {os.cpu_count()}"
        )
        if args.pairs:
            bench_pairs(args.pairs, work, avatar, audio, args.seconds, args.batch_size)
            return
        engine = get_engine("warp")
        run(["cat", str(avatar), str(audio)])  # warm the page cache for both sides
        bare_times, render_times = [], []
        bare_cpu, render_cpu = np.zeros(2), np.zeros(2)
        frames = 0
        bare_mem, render_mem = ChildMemory(), ChildMemory()
        for _ in range(max(1, args.repeat)):
            before = np.array(cpu_seconds())
            with bare_mem:
                bare_times.append(bare_ffmpeg(avatar, audio, work / "bare.mp4", duration))
            middle = np.array(cpu_seconds())
            start = time.perf_counter()
            with render_mem:
                result = engine.render(
                    avatar, audio, work / "render.mp4", batch_size=args.batch_size
                )
            render_times.append(time.perf_counter() - start)
            render_cpu += np.array(cpu_seconds()) - middle
            bare_cpu += middle - before
            frames = result.frames
        bare, rendered = min(bare_times), min(render_times)
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out = probe(work / "render.mp4")
        print(
            f"output: {out.width}x{out.height}, {out.duration:.2f} s, {frames} frames, "
            f"{out.size_bytes / 1e6:.1f} MB, video {out.video_codec} + audio {out.audio_codec}"
        )
        print(
            "ffmpeg decode+encode: "
            + ", ".join(f"{t:.2f}" for t in bare_times)
            + f" s -> best {bare:.2f} s = {frames / bare:.1f} fps"
        )
        print(
            "warp render:          "
            + ", ".join(f"{t:.2f}" for t in render_times)
            + f" s -> best {rendered:.2f} s = {frames / rendered:.1f} fps"
            + f" (device {result.device})"
        )
        runs = max(1, args.repeat)
        print(
            f"CPU per run (user + system): bare ffmpeg {bare_cpu.sum() / runs:.2f} s; render: "
            f"Python {render_cpu[0] / runs:.2f} s (tracking, warp, pipes) + ffmpeg "
            f"{render_cpu[1] / runs:.2f} s ({engine.tracked_frames} avatar frames tracked); "
            f"{load_note()}"
        )
        print(
            f"peak memory (getrusage maxrss): self {self_rss:.0f} MB + children "
            f"{child_rss:.0f} MB = {self_rss + child_rss:.0f} MB (a child's maxrss includes what "
            "it inherited from Python before exec)"
        )
        mib = 2**20
        print(
            f"ffmpeg children's own peak (VmHWM, sampled), largest child: render "
            f"{render_mem.largest() / mib:.0f} MB, bare pipeline {bare_mem.largest() / mib:.0f} MB"
        )
        if args.media:
            shutil.copy2(work / "render.mp4", args.media / "render.mp4")
        print(f"render/ffmpeg wall ratio: {rendered / bare:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
