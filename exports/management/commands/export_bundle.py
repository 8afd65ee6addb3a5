"""Build a bundle from the command line, through the same service path as the web page:
permission check, audit rows, the same builder."""

import shutil
import time
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from accounts.audit import RequestMeta
from accounts.models import Membership, normalize_email
from core.storage.bundles import LocalBundleStore, bundle_store
from exports import services
from exports.models import Export
from exports.scope import scope_from_params

WAIT_S = 3600


class Command(BaseCommand):
    help = "Pack a batch or project (optionally filtered by tag) into a ZIP bundle, as a user."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--as", dest="email", required=True, metavar="EMAIL")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--batch", type=int)
        which.add_argument("--project", type=int)
        parser.add_argument("--tag", action="append", default=[])
        parser.add_argument("--out", type=Path, help="Copy the finished bundle here.")

    def handle(self, *args, org, email, batch, project, tag, out, **options):
        membership = (
            Membership.objects.select_related("organization", "user")
            .filter(organization__slug=org, user__email=normalize_email(email))
            .first()
        )
        if membership is None:
            raise CommandError(f"{email} is not a member of an organization {org!r}.")
        params = QueryDict(mutable=True)
        if batch:
            params["batch"] = str(batch)
        if project:
            params["project"] = str(project)
        params.setlist("tag", tag)
        meta = RequestMeta(ip=None, user_agent="manage.py export_bundle")
        try:
            scope = scope_from_params(membership, params)
            export, created = services.export_request(membership=membership, scope=scope, meta=meta)
        except (ValidationError, PermissionDenied) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(text) from exc
        self.stderr.write(
            f"{'Packing' if created else 'Already packing'} export {export.pk}: {export.label} "
            f"({export.file_count} videos, {export.total_bytes} bytes)"
        )
        services.build_export(export_id=export.pk)
        deadline = time.monotonic() + WAIT_S
        export.refresh_from_db()
        while export.status in Export.ACTIVE and time.monotonic() < deadline:
            time.sleep(1)  # another worker is building it: wait for that one
            export.refresh_from_db()
        if export.status != Export.Status.READY:
            raise CommandError(f"Export {export.pk} is {export.status}: {export.error}")
        store = bundle_store(export.storage)
        if isinstance(store, LocalBundleStore):
            location = store.path(export.storage_key)
            if out:
                shutil.copyfile(location, out)
                location = out
        elif out:
            store.download(export.storage_key, out)
            location = out
        else:
            location = store.presigned_url(export.storage_key, export.filename)
        self.stdout.write(str(location))
