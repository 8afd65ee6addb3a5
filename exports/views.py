"""Pages for exports: confirm (cheap), follow, download. Thin over services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts.audit import RequestMeta
from accounts.tenancy import OrganizationMixin, OrganizationScopedMixin
from core.http import range_asked, same_site_path
from exports import budgets, services
from exports.models import Export
from exports.scope import scope_from_params
from exports.storage import (
    bundle_response,
)

PAGE_SIZE = 25


def _throttled(request, scope: str) -> HttpResponse | None:
    """A 429 page with Retry-After when this user has used up the action's budget."""
    wait = budgets.wait_seconds(request, scope)
    if wait is None:
        return None
    back = same_site_path(request, request.POST.get("back") or request.headers.get("Referer"))
    response = render(
        request, "429.html", {"message": budgets.message(scope, wait), "back": back}, status=429
    )
    response["Retry-After"] = str(wait)
    return response


class ExportConfirmView(OrganizationMixin, TemplateView):
    """The bundle button lands here: what would be packed, and a button to confirm."""

    permission_action = "export.request"
    template_name = "exports/confirm.html"

    def _scope(self, params):
        try:
            return scope_from_params(self.membership, params), None
        except ValidationError as exc:
            return None, " ".join(exc.messages)

    def get(self, request, org_slug):
        scope, error = self._scope(request.GET)
        if scope is None:
            raise Http404(error)
        count, size = services.export_preview(membership=self.membership, scope=scope)
        active = Export.objects.filter(
            organization=self.organization, scope_key=scope.key, status__in=Export.ACTIVE
        ).first()
        ready = None
        if count and active is None:
            ready = services.export_ready_for(membership=self.membership, scope=scope)
        return self.render_to_response(
            self.get_context_data(
                scope=scope,
                count=count,
                size=size,
                active=active,
                ready=ready,
                query=request.GET.urlencode(),
                back=same_site_path(request, request.headers.get("Referer")),
            )
        )

    def post(self, request, org_slug):
        scope, error = self._scope(request.POST)
        if scope is None:
            raise Http404(error)
        if refused := _throttled(request, "export-request"):
            return refused
        try:
            export, created = services.export_request(
                membership=self.membership,
                scope=scope,
                meta=RequestMeta.from_request(request),
                fresh=request.POST.get("fresh") == "1",
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            back = same_site_path(request, request.POST.get("back"))
            return redirect(back or reverse("jobs:projects", args=[org_slug]))
        if not created and export.status == Export.Status.READY:
            messages.info(request, _("This bundle was ready already, with the same videos."))
        elif not created:
            messages.info(request, _("This bundle is already being built: here it is."))
        return redirect("exports:detail", org_slug=org_slug, pk=export.pk)


class ExportListView(OrganizationScopedMixin, TemplateView):
    permission_action = "export.view"
    model = Export
    template_name = "exports/list.html"

    def get_base_queryset(self):
        # The list's columns only (not the error text, storage keys, checksums, …).
        return Export.objects.only(
            "id",
            "label",
            "status",
            "file_count",
            "total_bytes",
            "zip_bytes",
            "requested_by_label",
            "requested_at",
            "expires_at",
        ).order_by("-requested_at")

    def get_context_data(self, **kwargs):
        page = Paginator(self.get_queryset(), PAGE_SIZE).get_page(self.request.GET.get("page"))
        kwargs.update(page=page, query="")
        return super().get_context_data(**kwargs)


def _status_payload(org_slug: str, export: Export) -> dict:
    return {
        "id": export.pk,
        "status": export.status,
        "status_label": export.get_status_display(),
        "label": export.label,
        "file_count": export.file_count,
        "total_bytes": export.total_bytes,
        "zip_bytes": export.zip_bytes,
        "slow": export.is_slow,
        "error": export.error,
        "expires_at": export.expires_at.isoformat() if export.expires_at else None,
        "download": reverse("exports:download", args=[org_slug, export.pk])
        if export.status == Export.Status.READY
        else None,
    }


class ExportDetailView(OrganizationScopedMixin, TemplateView):
    permission_action = "export.view"
    model = Export
    template_name = "exports/detail.html"

    def get_context_data(self, **kwargs):
        export = self.get_scoped_object(self.kwargs["pk"])
        kwargs.update(export=export, soft_limit=settings.EXPORT_SOFT_LIMIT_S)
        return super().get_context_data(**kwargs)


class ExportStatusView(OrganizationScopedMixin, View):
    permission_action = "export.view"
    model = Export

    def get(self, request, org_slug, pk):
        return JsonResponse(_status_payload(org_slug, self.get_scoped_object(pk)))


class ExportDownloadView(OrganizationScopedMixin, View):
    permission_action = "export.download"
    model = Export

    def get(self, request, org_slug, pk):
        export = self.get_scoped_object(pk)
        if refused := _throttled(request, "export-download"):
            return refused
        try:
            services.export_download_started(
                membership=self.membership,
                export=export,
                range_header=range_asked(request),
                meta=RequestMeta.from_request(request),
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("exports:detail", org_slug=org_slug, pk=pk)
        return bundle_response(request, export)
