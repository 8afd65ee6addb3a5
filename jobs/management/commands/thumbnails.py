"""Remake the thumbnails of finished videos from their middle frame (older ones were taken
one second in), wherever the media live (a local folder or a bucket)."""

import tempfile
from pathlib import Path, PurePosixPath

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from core.storage import media as storage
from core.storage.scratch import scratch_root
from inference.media import make_thumbnail
from jobs.models import Output

THUMBNAIL_WIDTH = 320  # as jobs.services.rendering makes them


class Command(BaseCommand):
    help = "Remake the thumbnails of finished videos from their middle frame."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="only this organization's videos")

    def handle(self, *args, org=None, **options):
        outputs = Output.objects.only("id", "file", "thumbnail").order_by("id")
        if org is not None:
            if not Organization.objects.filter(slug=org).exists():
                raise CommandError(f"No organization has the slug {org!r}.")
            outputs = outputs.filter(job__batch__project__organization__slug=org)
        total = outputs.count()
        failed = 0
        for n, output in enumerate(outputs.iterator(), start=1):
            try:
                name = remake_thumbnail(output)
            except Exception as exc:  # one broken video must not stop the others
                failed += 1
                self.stderr.write(f"{n}/{total} output {output.pk}: {type(exc).__name__}: {exc}")
            else:
                self.stdout.write(f"{n}/{total} output {output.pk}: {name}")
        if failed:
            raise CommandError(f"{failed} of {total} thumbnails could not be remade.")
        self.stdout.write(f"{total} thumbnails remade.")


def remake_thumbnail(output: Output) -> str:
    """Take the video's middle frame as its thumbnail, stored under the thumbnail's name (or,
    for a video without one, the video's name with .jpg), and return that name."""
    name = output.thumbnail.name or str(PurePosixPath(output.file.name).with_suffix(".jpg"))
    with tempfile.TemporaryDirectory(prefix="thumbnails-", dir=scratch_root()) as folder:
        scratch = Path(folder)
        video = storage.fetch(output.file.name, scratch)
        thumb = make_thumbnail(video, scratch / "thumb.jpg", THUMBNAIL_WIDTH)
        storage.save_file(thumb, name, move=True)
    if name != output.thumbnail.name:
        Output.objects.filter(pk=output.pk).update(thumbnail=name)
    return name
