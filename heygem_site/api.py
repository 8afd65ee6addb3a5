"""The REST API's foundation: token authentication, the organization-scoped base view,
throttles, pagination and the one JSON error shape.

Every view under ``/api/v1/orgs/<slug>/`` derives from ``OrganizationAPIView``:

- ``initial()`` throttles by IP, authenticates (``Authorization: Bearer <token>`` or the
  browser session, CSRF enforced), throttles by token, resolves the slug into the acting
  membership once (a token only ever reaches its own organization; anything else is 404), and
  checks the role against ``accounts.permissions`` for the HTTP method (403).
- ``get_queryset()`` always filters by that organization. Subclasses narrow it through
  ``get_base_queryset()`` and cannot override ``get_queryset`` (``TypeError`` at import); the
  only way around the scope is the deliberately named ``dangerously_get_unscoped_queryset``.
- Every error — validation, permission, missing, throttled, crashed — is answered as
  ``{"error": {"code": ..., "message": ..., "fields": {...}}}``.

This module may import accounts only: the apps' api modules import it, and imports flow
exports -> jobs -> accounts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import Context, Template
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import set_rollback

from accounts.audit import RequestMeta
from accounts.models import ApiToken, Membership, Organization
from accounts.permissions import PERMISSIONS, role_allows
from accounts.selectors import membership_for
from accounts.services import api_token_authenticate
from heygem_site.middleware import content_security_policy
from heygem_site.ratelimit import SettingRateThrottle

logger = logging.getLogger("heygem_site.api")

# Ids are 64-bit: larger numbers in a URL are answered like any missing id.
MAX_ID = 2**63 - 1


# --- authentication --------------------------------------------------------------------------


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
                "Send the token as: Authorization: Bearer <token>.", code="invalid_token"
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raw = ""
        found = api_token_authenticate(raw)
        if found is None:
            raise exceptions.AuthenticationFailed(
                "This token is not valid: it is unknown, expired or revoked, or its owner "
                "is no longer a member.",
                code="invalid_token",
            )
        token, membership = found
        return membership.user, TokenAuth(token=token, membership=membership)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "heygem_site.api.BearerTokenAuthentication"
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


class IPRateThrottle(SettingRateThrottle):
    scope = "ip"
    setting = "API_THROTTLE_IP"

    def get_cache_key(self, request, view):
        ip = RequestMeta.from_request(request).ip or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ip}


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


# --- errors ----------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. invalid, not_found, throttled.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per request field, what is wrong with it (empty when not about a field).",
    )


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def errors(*codes: int, media_type: str | None = None) -> dict:
    """Error responses for @extend_schema: 401, 404 and 429 always, plus ``codes``."""
    return {
        ((code, media_type) if media_type else code): ErrorSerializer
        for code in sorted({401, 404, 429, *codes})
    }


def _as_strings(detail) -> list[str]:
    if isinstance(detail, dict):
        return [s for value in detail.values() for s in _as_strings(value)]
    if isinstance(detail, list):
        return [s for value in detail for s in _as_strings(value)]
    return [str(detail)]


def _from_django_validation(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        detail = {
            ("non_field_errors" if field == "__all__" else field): messages
            for field, messages in exc.message_dict.items()
        }
    else:
        detail = {"non_field_errors": exc.messages}
    return exceptions.ValidationError(detail)


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _validation_body(exc: exceptions.ValidationError) -> dict:
    detail = exc.detail
    if not isinstance(detail, dict):
        detail = {"non_field_errors": detail}
    general = _as_strings(detail.get("non_field_errors", []))
    fields = {
        name: _as_strings(value) for name, value in detail.items() if name != "non_field_errors"
    }
    if general:
        message = " ".join(general)
    elif fields:
        message = (
            "Check these fields: "
            + ", ".join(fields)
            + ". "
            + " ".join(f"{name}: {messages[0]}" for name, messages in fields.items() if messages)
        )
    else:
        message = "The request is not valid."
    return error_body("invalid", message.strip(), fields)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every API error in one shape: {"error": {"code", "message", "fields"}}."""
    if isinstance(exc, DjangoValidationError):
        exc = _from_django_validation(exc)
    elif isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound(str(exc) if isinstance(exc, Http404) and exc.args else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(str(exc) or None)
    elif isinstance(exc, SuspiciousOperation):  # too many fields or files, a hostile header…
        exc = exceptions.ParseError(str(exc) or "The request is malformed.", code="bad_request")
    if not isinstance(exc, exceptions.APIException):
        view = context.get("view")
        logger.exception("API error in %s", type(view).__name__ if view else "?", exc_info=exc)
        set_rollback()
        return Response(
            error_body("server_error", "Something went wrong on our side; it was logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled):
        headers["Retry-After"] = str(max(1, math.ceil(wait or 1)))
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message = " ".join(_as_strings(exc.detail))
        if isinstance(exc, exceptions.Throttled) and message.startswith("Request was throttled"):
            message = f"Too many requests; try again in {headers['Retry-After']} s."
        body = error_body(str(code), message)
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # it changes nothing; a POST to a mistyped address gets the JSON 404, not a CSRF page
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Anything under /api/ that no route matches, in the API's error shape."""
    return JsonResponse(
        error_body("not_found", "There is no such API address; see /api/docs/."), status=404
    )


class OfflineRedocView(SpectacularRedocView):
    """ReDoc from drf-spectacular-sidecar's files, without the web fonts drf-spectacular's own
    page loads from Google: the docs work on a machine with no internet access."""

    PAGE = Template(
        '<!DOCTYPE html><html><head><title>{{ title }}</title><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body { margin: 0; padding: 0; }</style></head><body>"
        '<redoc spec-url="{{ schema_url }}"></redoc>'
        '<script src="{{ redoc_standalone }}"></script></body></html>'
    )

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        context = Context(
            {
                "title": self.title,
                "redoc_standalone": self._redoc_standalone(),
                "schema_url": self._get_schema_url(request),
            }
        )
        return with_docs_csp(HttpResponse(self.PAGE.render(context)))


def with_docs_csp(response: HttpResponse) -> HttpResponse:
    """The API viewers style themselves with inline <style> and ReDoc parses in a blob
    worker: those two pages allow that; scripts still come only from this site."""
    response["Content-Security-Policy"] = (
        content_security_policy().replace("style-src 'self'", "style-src 'self' 'unsafe-inline'", 1)
        + "; worker-src 'self' blob:"
    )
    return response


class OfflineSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI from sidecar files; its start-up script is served as a file (CSP-safe)."""

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return with_docs_csp(super().get(request, *args, **kwargs))


# --- pagination and rendering ----------------------------------------------------------------


class PagePagination(PageNumberPagination):
    """``?page=N&limit=M`` (M at most 200); the answer has count, next, previous, results."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


class AuditCursorPagination(CursorPagination):
    """``?cursor=…`` from ``next`` / ``previous``: stable while new events are appended."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-seq"


class CSVRenderer(BaseRenderer):
    """Lets ``?format=csv`` (or ``Accept: text/csv``) reach views that stream CSV themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only errors get here (the views stream CSV themselves): send them as JSON text.
        return JSONRenderer().render(data)


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
            self.throttled(request, throttle.wait())

    def _resolve_membership(self, request, slug: str) -> Membership:
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Send an API token: Authorization: Bearer <token>.", code="not_authenticated"
            )
        if isinstance(request.auth, TokenAuth):
            membership = request.auth.membership
            if membership.organization.slug != slug:
                raise exceptions.NotFound("No such organization.")
            return membership
        try:
            return membership_for(user, slug)
        except Http404 as exc:
            raise exceptions.NotFound("No such organization.") from exc

    def require(self, action: str) -> None:
        """403 unless the acting role may perform ``action`` (the one permission table)."""
        if not role_allows(self.membership.role, action):
            raise exceptions.PermissionDenied(
                f"Your role ({self.membership.get_role_display()}) may not do this ({action})."
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
            raise exceptions.NotFound(f"No such {model._meta.verbose_name}: {pk}.")
        return row

    @property
    def meta(self) -> RequestMeta:
        return RequestMeta.from_request(self.request)

    def api_url(self, name: str, *args) -> str:
        from django.urls import reverse

        return self.request.build_absolute_uri(
            reverse(f"api:{name}", args=[self.organization.slug, *args])
        )
