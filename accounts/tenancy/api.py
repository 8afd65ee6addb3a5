"""The API's tenancy: token authentication and the organization-scoped base view (the twin
of ``accounts.tenancy.pages`` for the dashboard). The error shape, pagination and throttles it
uses come from ``core``.

Every view under ``/api/v1/orgs/<slug>/`` derives from ``OrganizationAPIView``:

- ``initial()`` throttles by IP, authenticates (``Authorization: Bearer <token>`` or the
  browser session, CSRF enforced), throttles by token, resolves the slug into the acting
  membership once (a token only ever reaches its own organization; anything else is 404), and
  checks the role against ``accounts.permissions`` for the HTTP method (403).
- ``get_queryset()`` always filters by that organization. Subclasses narrow it through
  ``get_base_queryset()`` and cannot override ``get_queryset`` (``TypeError`` at import); the
  only way around the scope is the deliberately named ``dangerously_get_unscoped_queryset``.
- Every error is answered in ``core.api``'s one JSON shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from accounts.audit import RequestMeta
from accounts.models import ApiToken, Membership, Organization
from accounts.permissions import PERMISSIONS, role_allows
from accounts.preferences import activate_for_api
from accounts.selectors import membership_for
from accounts.services import api_token_authenticate
from core.api import MAX_ID, PagePagination, api_exception_handler
from core.throttles import IPRateThrottle, SettingRateThrottle

# --- authentication --------------------------------------------------------------------------

AUTHORIZATION_EXAMPLE = "Authorization: Bearer <token>"  # the same in every language


@dataclass(frozen=True)
class TokenAuth:
    """``request.auth`` for a token request: the token and its owner's current membership."""

    token: ApiToken
    membership: Membership


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer hgm_<prefix>_<secret>`` — an ApiToken, checked by
    accounts.services.api_token_authenticate (hash, expiry, revocation, active membership)."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the token as: %(header)s.") % {"header": AUTHORIZATION_EXAMPLE},
                code="invalid_token",
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raw = ""
        found = api_token_authenticate(raw)
        if found is None:
            raise exceptions.AuthenticationFailed(
                _(
                    "This token is not valid: it is unknown, expired or revoked, or its owner "
                    "is no longer a member."
                ),
                code="invalid_token",
            )
        token, membership = found
        return membership.user, TokenAuth(token=token, membership=membership)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.tenancy.api.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hgm_<prefix>_<secret>",
            "description": "An API token created on the organization's “API tokens” page "
            "or through /tokens/. It acts with its owner's current role.",
        }


# --- throttles -------------------------------------------------------------------------------


class TokenRateThrottle(SettingRateThrottle):
    scope = "token"
    setting = "API_THROTTLE_TOKEN"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, TokenAuth):
            ident = f"t{request.auth.token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"  # the browser session: the same budget per user
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


# --- the base view ---------------------------------------------------------------------------

_HANDLERS = ("get", "post", "put", "patch", "delete")


class OrganizationAPIView(GenericAPIView):
    """Base of every organization API view: see the module docstring.

    Subclasses set ``model`` (and ``organization_lookup`` when the model reaches its
    organization through a relation) and ``permissions``: HTTP method -> action of
    accounts.permissions.PERMISSIONS. A handler without an action fails at import.
    """

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes: ClassVar[list] = []  # the permission table is checked in initial()
    throttle_classes: ClassVar[list] = []  # IP and token throttles run in initial()
    renderer_classes: ClassVar[list] = [JSONRenderer]
    pagination_class = PagePagination
    metadata_class = None  # no OPTIONS metadata: OPTIONS answers 405
    model: ClassVar[type[Model]]
    organization_lookup: ClassVar[str] = "organization"
    permissions: ClassVar[dict[str, str]] = {}

    membership: Membership
    organization: Organization

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "initial"):
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); override get_base_queryset() instead, "
                    "so the organization scope and the permission check cannot be dropped."
                )
        for method, action in cls.permissions.items():
            if action not in PERMISSIONS:
                raise TypeError(f"{cls.__name__}: {method} -> {action!r} is not an action.")
        for handler in _HANDLERS:
            if hasattr(cls, handler) and handler.upper() not in cls.permissions:
                raise TypeError(f"{cls.__name__}.{handler}() has no entry in permissions.")

    # --- request set-up ---

    def get_exception_handler(self):
        return api_exception_handler

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(
            request
        )
        request.version, request.versioning_scheme = self.determine_version(
            request, *args, **kwargs
        )
        self._throttle(request, IPRateThrottle())  # before authentication: guessing is throttled
        self.perform_authentication(request)
        # Errors from here on speak the token owner's language when the call asks for none.
        activate_for_api(request)
        self._throttle(request, TokenRateThrottle())
        if any(isinstance(v, int) and v > MAX_ID for v in kwargs.values()):
            raise exceptions.NotFound()
        self.membership = self._resolve_membership(request, kwargs["org_slug"])
        self.organization = self.membership.organization
        method = "GET" if request.method == "HEAD" else request.method
        action = self.permissions.get(method)
        if action is None:
            if method.lower() in _HANDLERS and hasattr(self, method.lower()):
                raise exceptions.PermissionDenied()  # fail closed; __init_subclass__ prevents it
            return  # no such handler (or OPTIONS): the answer is 405
        self.require(action)

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors are JSON even where a view also speaks CSV.
        if getattr(response, "exception", False) and isinstance(response, Response):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def _throttle(self, request, throttle: SimpleRateThrottle) -> None:
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())  # core.api words it (translated)

    def _resolve_membership(self, request, slug: str) -> Membership:
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                _("Send an API token: %(header)s.") % {"header": AUTHORIZATION_EXAMPLE},
                code="not_authenticated",
            )
        if isinstance(request.auth, TokenAuth):
            membership = request.auth.membership
            if membership.organization.slug != slug:
                raise exceptions.NotFound(_("No such organization."))
            return membership
        try:
            return membership_for(user, slug)
        except Http404 as exc:
            raise exceptions.NotFound(_("No such organization.")) from exc

    def require(self, action: str) -> None:
        """403 unless the acting role may perform ``action`` (the one permission table)."""
        if not role_allows(self.membership.role, action):
            raise exceptions.PermissionDenied(
                _("Your role (%(role)s) may not do this (%(action)s).")
                % {"role": self.membership.get_role_display(), "action": action}
            )

    # --- the organization scope ---

    def get_base_queryset(self) -> QuerySet:
        return self.model._default_manager.all()

    def dangerously_get_unscoped_queryset(self) -> QuerySet:
        return self.get_base_queryset()

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return self.model._default_manager.none()
        return self.get_base_queryset().filter(**{self.organization_lookup: self.organization})

    def get_object(self) -> Model:
        """The URL's row of this organization: 404 for missing and foreign alike, said in the
        caller's language (Django's shortcut says "No Membership matches the given query.")."""
        try:
            return super().get_object()
        except Http404 as exc:
            pk = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, "")
            raise exceptions.NotFound(
                _("No such %(thing)s: %(id)s.") % {"thing": self.model._meta.verbose_name, "id": pk}
            ) from exc

    def scoped(self, model: type[Model], lookup: str, pk: Any) -> Model:
        """Another model's row ``pk`` in this organization (for ids in a request body):
        404 for missing and foreign alike."""
        try:
            pk = int(pk)
        except (TypeError, ValueError):
            pk = 0
        row = None
        if 0 < pk <= MAX_ID:
            row = model._default_manager.filter(**{lookup: self.organization, "pk": pk}).first()
        if row is None:
            raise exceptions.NotFound(
                _("No such %(thing)s: %(id)s.") % {"thing": model._meta.verbose_name, "id": pk}
            )
        return row

    @property
    def meta(self) -> RequestMeta:
        return RequestMeta.from_request(self.request)

    def api_url(self, name: str, *args) -> str:
        from django.urls import reverse

        return self.request.build_absolute_uri(
            reverse(f"api:{name}", args=[self.organization.slug, *args])
        )
