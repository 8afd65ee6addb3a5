"""Benchmark: an upload the library already holds against a new one, and against reading it.

Makes (with ffmpeg) a 10 s 1280x720 avatar video, then, in a throwaway platform (SQLite and
folders in a temp dir, as ``bench/export.py`` sets one up), times in the same process, each
round alternating their order:

- **new**: ``jobs.services.asset_create`` of the video remuxed with another comment (the same
  media in other bytes, so each round is new content): hashing, ffprobe with a full decode
  check, the face check, the copy into storage, the row and its audit event;
- **again**: ``asset_create`` of the very bytes already in the library: hashed, found, nothing
  probed or stored (the answer is the entry already there, ``reused``);
- **sha256**: reading and hashing the same file with ``hashlib.file_digest`` alone, the floor
  of any check by content.

Prints the median of each and, as its LAST line,
``upload again/new wall ratio: X.XXX  again/sha256: Y.YY`` (again should be a small fraction
of new, and close to a plain hash of the file).

    .venv/bin/python bench/uploads.py [--repeat 7] [--seconds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import setup_django  # bench/export.py: the throwaway platform


def _sha256(path: Path) -> str:
    with path.open("rb") as reader:
        return hashlib.file_digest(reader, "sha256").hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        work = Path(tmp)
        setup_django(work)
        from django.core.management import call_command

        from accounts.models import Membership, User
        from accounts.services import organization_create
        from jobs import services
        from tests import media

        call_command("migrate", verbosity=0)
        user = User.objects.create_user("bench@example.com", "bench-password")
        org = organization_create(user=user, name="Bench", slug="bench")
        member = Membership.objects.get(organization=org, user=user)
        source = media.make_avatar(work / "face.mp4", seconds=args.seconds, size=(1280, 720))
        size = source.stat().st_size
        print(f"avatar: {args.seconds:.0f} s 1280x720, {size / 1e6:.1f} MB")

        def upload(path: Path, name: str):
            copy = work / f"upload-{time.monotonic_ns()}"
            shutil.copy(path, copy)  # an upload arrives as a temp file of its own
            return services.UploadedMedia(copy, name)

        services.asset_create(membership=member, kind="avatar", upload=upload(source, "a.mp4"))
        times: dict[str, list[float]] = {"new": [], "again": [], "sha256": []}
        for round_ in range(args.repeat):
            fresh = media.variant_of(source, work / f"variant-{round_}.mp4", round_ + 1)
            # The uploads' temp files exist before the clock starts, as they do for the view.
            new, again = upload(fresh, "new.mp4"), upload(source, "again.mp4")
            steps = {
                "new": lambda new=new: services.asset_create(
                    membership=member, kind="avatar", upload=new
                ),
                "again": lambda again=again: services.asset_create(
                    membership=member, kind="avatar", upload=again
                ),
                "sha256": lambda: _sha256(source),
            }
            order = list(steps) if round_ % 2 == 0 else list(reversed(steps))
            for name in order:
                started = time.perf_counter()
                result = steps[name]()
                times[name].append(time.perf_counter() - started)
                if name == "again":
                    assert result.reused, "the same bytes were stored again"
                if name == "new":
                    assert not result.reused, "a new content was taken for a duplicate"
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"{name:7s} median {value * 1000:8.1f} ms  ({len(times[name])} runs)")
        print(
            f"upload again/new wall ratio: {medians['again'] / medians['new']:.3f}  "
            f"again/sha256: {medians['again'] / medians['sha256']:.2f}"
        )


if __name__ == "__main__":
    main()
