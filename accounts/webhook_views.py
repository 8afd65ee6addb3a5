"""Pages for admins: webhook endpoints (list, add, remove, rotate the secret) and their
recent deliveries. Thin over accounts.webhooks."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from accounts import webhooks
from accounts.audit import RequestMeta
from accounts.models import WebhookDelivery, WebhookEndpoint
from accounts.tenancy import OrganizationMixin, OrganizationScopedMixin

RECENT_DELIVERIES = 20
DELIVERIES_PER_PAGE = 50


def _url_help() -> str:
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return _(
            "Where we POST the events: %(example)s. This server also allows private (intranet) "
            "addresses."
        ) % {"example": "https://…"}
    return _(
        "Where we POST the events: %(example)s on a public host. Intranet addresses are "
        "refused unless an operator sets %(setting)s."
    ) % {"example": "https://…", "setting": webhooks.ALLOW_PRIVATE_SETTING}


class WebhookForm(forms.Form):
    url = forms.CharField(
        label=gettext_lazy("URL"),
        max_length=500,
        help_text=lazy(lambda: _url_help(), str)(),
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/heygem-hook"}),
    )
    description = forms.CharField(
        label=gettext_lazy("Description"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("What listens there, e.g. “render farm bot”."),
    )
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        choices=WebhookEndpoint.Event.choices,
        initial=list(WebhookEndpoint.Event.values),
        widget=forms.CheckboxSelectMultiple,
    )


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class WebhookListView(OrganizationScopedMixin, TemplateView):
    permission_action = "webhook.manage"
    model = WebhookEndpoint
    template_name = "accounts/webhooks.html"

    def get_base_queryset(self):
        return WebhookEndpoint.objects.select_related("created_by").order_by("-created_at", "-id")

    def get_context_data(self, **kwargs):
        kwargs.update(
            endpoints=list(self.get_queryset()),
            deliveries=list(
                WebhookDelivery.objects.filter(organization=self.organization)
                .select_related("endpoint")
                .order_by("-created_at", "-id")[:RECENT_DELIVERIES]
            ),
            events=WebhookEndpoint.Event.choices,
            event_names=WebhookEndpoint.EVENT_NAMES,
        )
        kwargs.setdefault("form", WebhookForm())
        return super().get_context_data(**kwargs)


class WebhookCreateView(OrganizationMixin, TemplateView):
    permission_action = "webhook.manage"
    template_name = "accounts/webhook_secret.html"

    def get(self, request, org_slug):
        """The form lives on the webhooks page; this address only answers its POST."""
        return redirect("accounts:webhooks", org_slug=org_slug)

    def post(self, request, *args, **kwargs):
        form = WebhookForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = webhooks.webhook_endpoint_create(
                    membership=self.membership,
                    meta=RequestMeta.from_request(request),
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                response = self.render_to_response(
                    self.get_context_data(endpoint=endpoint, secret=secret, created=True)
                )
                response["Cache-Control"] = "no-store"
                return response
        view = WebhookListView()
        view.setup(request, *args, **kwargs)
        view.membership, view.organization = self.membership, self.organization
        return view.render_to_response(view.get_context_data(form=form), status=400)


class WebhookDetailView(OrganizationScopedMixin, TemplateView):
    permission_action = "webhook.manage"
    model = WebhookEndpoint
    template_name = "accounts/webhook_detail.html"

    def get_context_data(self, **kwargs):
        endpoint = self.get_scoped_object(self.kwargs["pk"])
        page = Paginator(
            endpoint.deliveries.order_by("-created_at", "-id"), DELIVERIES_PER_PAGE
        ).get_page(self.request.GET.get("page"))
        kwargs.update(endpoint=endpoint, page=page, deliveries=page.object_list, query="")
        kwargs["event_names"] = WebhookEndpoint.EVENT_NAMES
        return super().get_context_data(**kwargs)


class WebhookDeleteView(OrganizationScopedMixin, View):
    permission_action = "webhook.manage"
    model = WebhookEndpoint

    def post(self, request, org_slug, pk):
        endpoint = self.get_scoped_object(pk)
        webhooks.webhook_endpoint_delete(
            membership=self.membership, endpoint=endpoint, meta=RequestMeta.from_request(request)
        )
        messages.success(request, _("The webhook to %(url)s was removed.") % {"url": endpoint.url})
        return redirect("accounts:webhooks", org_slug=org_slug)


class WebhookToggleView(OrganizationScopedMixin, View):
    permission_action = "webhook.manage"
    model = WebhookEndpoint

    def post(self, request, org_slug, pk):
        endpoint = self.get_scoped_object(pk)
        endpoint = webhooks.webhook_endpoint_update(
            membership=self.membership,
            endpoint=endpoint,
            is_active=not endpoint.is_active,
            meta=RequestMeta.from_request(request),
        )
        if endpoint.is_active:
            text = _("Deliveries to %(url)s are resumed.")
        else:
            text = _("Deliveries to %(url)s are paused.")
        messages.success(request, text % {"url": endpoint.url})
        return redirect("accounts:webhook", org_slug=org_slug, pk=pk)


class WebhookTestView(OrganizationScopedMixin, View):
    """The "Send test event" button: queues a signed ping and goes back to the webhook's page,
    where the delivery is listed with its outcome."""

    permission_action = "webhook.manage"
    model = WebhookEndpoint

    def get(self, request, org_slug, pk):
        """Only the button (POST) sends; a GET goes to the endpoint."""
        endpoint = self.get_scoped_object(pk)
        return redirect("accounts:webhook", org_slug=org_slug, pk=endpoint.pk)

    def post(self, request, org_slug, pk):
        endpoint = self.get_scoped_object(pk)
        try:
            webhooks.webhook_send_test(
                membership=self.membership,
                endpoint=endpoint,
                meta=RequestMeta.from_request(request),
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                _(
                    "A test event is on its way to %(url)s. Its outcome shows under Deliveries "
                    "below in a few seconds; reload the page to see it."
                )
                % {"url": endpoint.url},
            )
        return redirect("accounts:webhook", org_slug=org_slug, pk=endpoint.pk)


class WebhookRotateSecretView(OrganizationScopedMixin, TemplateView):
    permission_action = "webhook.manage"
    model = WebhookEndpoint
    template_name = "accounts/webhook_secret.html"

    def get(self, request, org_slug, pk):
        """A new secret is only made by the button (POST); a GET goes to the endpoint."""
        endpoint = self.get_scoped_object(pk)
        return redirect("accounts:webhook", org_slug=org_slug, pk=endpoint.pk)

    def post(self, request, org_slug, pk):
        endpoint, secret = webhooks.webhook_endpoint_rotate_secret(
            membership=self.membership,
            endpoint=self.get_scoped_object(pk),
            meta=RequestMeta.from_request(request),
        )
        response = self.render_to_response(
            self.get_context_data(endpoint=endpoint, secret=secret, created=False)
        )
        response["Cache-Control"] = "no-store"
        return response
