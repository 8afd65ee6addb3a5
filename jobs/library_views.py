"""The library page: the organization's avatar videos and audio tracks, searched, filtered by
kind, paged, previewed, uploaded (once per content), renamed and deleted. Thin views over
``jobs.services`` and ``jobs.selectors``; the new-batch page's uploader sends its files to
``AssetUploadView`` here too."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views import View
from django.views.generic import TemplateView

from accounts.audit import RequestMeta
from accounts.services import require
from accounts.tenancy import OrganizationMixin, OrganizationScopedMixin
from core.storage import media as storage
from jobs import selectors, services
from jobs.models import Asset, RenderJob

ASSETS_PER_PAGE = 25

# How each stored extension is served to the page's player (the content decided it on upload).
MEDIA_TYPES = {
    "mp4": "video/mp4",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "mka": "audio/x-matroska",
}


def _filters(data) -> dict[str, str]:
    """The library's filters from a query string or a form: kind and search words."""
    kind = data.get("kind", "")
    return {
        "kind": kind if kind in Asset.Kind.values else "",
        "q": " ".join(str(data.get("q", "")).split())[:200],
    }


def _back_query(data) -> str:
    """``?kind=…&q=…&page=…`` of the filters and page in ``data`` (empty when none)."""
    query = {k: v for k, v in _filters(data).items() if v}
    page = str(data.get("page", ""))
    if page.isdigit() and page != "1":
        query["page"] = page
    return "?" + urlencode(query) if query else ""


def _back(org_slug: str, data) -> str:
    """The library page with the filters and page the person came from."""
    return reverse("jobs:library", kwargs={"org_slug": org_slug}) + _back_query(data)


def _uses(ids: list[int]) -> dict[int, dict[str, int]]:
    """For each asset: how many videos were made or are being made with it (``videos``), and
    how many of those are still queued or rendering (``busy``)."""
    uses: dict[int, dict[str, int]] = {pk: {"videos": 0, "busy": 0} for pk in ids}
    if not ids:
        return uses
    waiting = (RenderJob.Status.QUEUED, RenderJob.Status.RUNNING)
    for field in ("avatar_id", "audio_id", "script__audio_id"):
        rows = (
            RenderJob.objects.filter(**{f"{field}__in": ids})
            .order_by()
            .values(field)
            .annotate(videos=Count("id"), busy=Count("id", filter=Q(status__in=waiting)))
        )
        for row in rows:
            mine = uses[row[field]]
            mine["videos"] += row["videos"]
            mine["busy"] += row["busy"]
    return uses


class LibraryView(OrganizationScopedMixin, TemplateView):
    permission_action = "project.view"
    model = Asset
    template_name = "jobs/library.html"

    def get_context_data(self, **kwargs):
        filters = _filters(self.request.GET)
        assets = selectors.library(self.membership, kind=filters["kind"], query=filters["q"])
        page = Paginator(assets, ASSETS_PER_PAGE).get_page(self.request.GET.get("page"))
        rows = list(page.object_list)
        kwargs.update(
            page=page,
            assets=rows,
            uses=_uses([a.pk for a in rows]),
            filters=filters,
            query=_back_query(filters).removeprefix("?"),
            # Where a rename or a delete comes back to: these filters, this page.
            back=_back_query({**filters, "page": str(page.number)}),
            kinds=Asset.Kind.choices,
            deletable={a.pk for a in rows if services.asset_deletable_by(self.membership, a)},
            max_mb=settings.ASSET_MAX_BYTES // 1_000_000,
        )
        return super().get_context_data(**kwargs)

    def post(self, request, org_slug):
        """Files sent by the form without the page's script: each checked on its own."""
        require(self.membership, "asset.upload")
        files = [
            (kind, upload)
            for kind, field in (
                (Asset.Kind.AVATAR, "avatar_files"),
                (Asset.Kind.AUDIO, "audio_files"),
            )
            for upload in request.FILES.getlist(field)
        ]
        upload_error = getattr(request, "upload_error", None)
        if upload_error:
            messages.error(request, upload_error)
        elif not files:
            messages.error(request, _("Choose at least one file to upload."))
        for kind, upload in files:
            try:
                asset = store_upload(request, self.membership, kind, upload)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, upload_verdict(upload.name, asset))
        return redirect("jobs:library", org_slug=org_slug)


def store_upload(request, membership, kind: str, upload) -> Asset:
    """One file of a page's form checked and stored in the library (or found there); its
    temp file is closed either way."""
    try:
        return services.asset_create(
            membership=membership,
            kind=kind,
            upload=services.UploadedMedia(Path(upload.temporary_file_path()), upload.name),
            meta=RequestMeta.from_request(request),
        )
    finally:
        upload.close()


def one_file(request) -> tuple[object | None, JsonResponse | None]:
    """The single file a page's script sent in the field ``file``, or the JSON answer that
    says what is wrong (cut off at the size limit, none, several)."""
    files = request.FILES.getlist("file")  # reads the body: a file cut off says so below
    upload_error = getattr(request, "upload_error", None)
    if upload_error:
        return None, JsonResponse({"error": upload_error}, status=413)
    if len(files) != 1:
        return None, JsonResponse(
            {"error": _("Send exactly one file in the field “file”.")}, status=400
        )
    return files[0], None


def upload_verdict(sent_name: str, asset: Asset) -> str:
    """What the page says about one accepted upload."""
    if asset.reused:
        return _(
            "“%(sent)s” is already in your library as “%(name)s”: nothing new was stored, "
            "that entry is used."
        ) % {"sent": services.display_name(sent_name), "name": asset.original_name}
    return _("“%(name)s” was added to the library.") % {"name": asset.original_name}


class AssetUploadView(OrganizationMixin, View):
    """Upload one file (avatar or audio) and answer in JSON: the pages' drag-and-drop
    uploader sends files one by one, so each gets its own progress and its own verdict. The
    same content already in the library answers 200 with that asset and ``reused``."""

    permission_action = "asset.upload"

    def post(self, request, org_slug):
        upload, refusal = one_file(request)
        if refusal is not None:
            return refusal
        try:
            asset = store_upload(request, self.membership, request.POST.get("kind", ""), upload)
        except ValidationError as exc:
            return JsonResponse({"error": " ".join(exc.messages)}, status=400)
        return JsonResponse(
            {
                "id": asset.pk,
                "kind": asset.kind,
                "name": asset.original_name,
                "duration": asset.duration,
                "bytes": asset.bytes,
                "width": asset.width,
                "height": asset.height,
                "reused": asset.reused,
                # The page's word for a file that passed every check (or was already here).
                "verdict": (
                    _("already in your library as “%(name)s”") % {"name": asset.original_name}
                    if asset.reused
                    else pgettext("upload verdict", "accepted")
                ),
            },
            status=200 if asset.reused else 201,
        )


class _AssetAction(OrganizationScopedMixin, View):
    """A POST on one library entry; the outcome is flashed on the library page."""

    model = Asset

    def get_base_queryset(self):
        return Asset.objects.in_library()

    def post(self, request, org_slug, pk):
        asset = self.get_scoped_object(pk)
        try:
            text = self.act(request, asset)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, text)
        return redirect(_back(org_slug, request.GET))


class AssetRenameView(_AssetAction):
    permission_action = "asset.rename"

    def act(self, request, asset: Asset) -> str:
        old = asset.original_name
        asset = services.asset_rename(
            membership=self.membership,
            asset=asset,
            name=request.POST.get("name", ""),
            meta=RequestMeta.from_request(request),
        )
        if asset.original_name == old:
            return _("The name is unchanged: “%(name)s”.") % {"name": old}
        return _("“%(old)s” is now called “%(name)s”.") % {"old": old, "name": asset.original_name}


class AssetDeleteView(_AssetAction):
    permission_action = "asset.delete"

    def act(self, request, asset: Asset) -> str:
        services.asset_delete(
            membership=self.membership, asset=asset, meta=RequestMeta.from_request(request)
        )
        return _(
            "“%(name)s” was deleted from the library. Videos already made with it keep working."
        ) % {"name": asset.original_name}


class AssetMediaView(OrganizationScopedMixin, View):
    """A library file for the page's player (inline, byte ranges served), or to download
    (``?download=1``)."""

    permission_action = "project.view"
    model = Asset

    def get_base_queryset(self):
        return Asset.objects.in_library()

    def get(self, request, org_slug, pk):
        asset = self.get_scoped_object(pk)
        ext = Path(asset.file.name).suffix.lstrip(".").lower()
        return storage.serve(
            request,
            asset.file.name,
            content_type=MEDIA_TYPES.get(ext, "application/octet-stream"),
            filename=asset.original_name,
            attachment=request.GET.get("download") == "1",
        )
