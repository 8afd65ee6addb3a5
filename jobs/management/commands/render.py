"""Render one avatar x audio pair from the command line, with a progress bar."""

import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Render AVATAR lip-synced to AUDIO into OUT (an .mp4), for debugging and scripts."

    def add_arguments(self, parser):
        parser.add_argument("avatar", type=Path)
        parser.add_argument("audio", type=Path)
        parser.add_argument("out", type=Path)
        parser.add_argument("--engine", default="warp")
        parser.add_argument("--device", default=settings.INFERENCE_DEVICE or None)
        parser.add_argument("--batch-size", type=int, default=settings.RENDER_BATCH_SIZE)

    def handle(self, *args, avatar, audio, out, engine, device, batch_size, **options):
        from inference.errors import InferenceError
        from jobs.engines import load_engine

        for path in (avatar, audio):
            if not path.is_file():
                raise CommandError(f"{path} does not exist or is not a file.")
        if out.suffix.lower() != ".mp4":
            raise CommandError("OUT must end in .mp4.")
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            width = 40
            filled = int(width * done / total) if total else 0
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} frames")
            sys.stderr.flush()

        try:
            result = load_engine(engine).render(
                avatar, audio, out, progress, device=device, batch_size=batch_size
            )
        except InferenceError as exc:
            sys.stderr.write("\n")
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        sys.stderr.write("\n")
        self.stdout.write(
            f"{result.path}: {result.frames} frames, {result.duration:.2f} s, "
            f"{result.width}x{result.height}, {result.bytes} bytes, sha256 {result.sha256}, "
            f"crc32 {result.crc32:08x}, {result.frames / elapsed:.1f} fps on {result.device}"
        )
