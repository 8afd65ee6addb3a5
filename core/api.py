"""The REST API's common ground: the one JSON error shape and its handler, pagination and the
CSV renderer.

Every error — validation, permission, missing, throttled, crashed — is answered as
``{"error": {"code": ..., "message": ..., "fields": {...}}}``. The organization-scoped base
view that uses all of this lives in ``accounts.tenancy.api``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger("core.api")

# Ids are 64-bit: larger numbers in a URL are answered like any missing id.
MAX_ID = 2**63 - 1


# --- errors ----------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("The object is not in a state that allows this.")
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The upload is too large.")
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
        details = [
            _("%(field)s: %(message)s") % {"field": name, "message": messages[0]}
            for name, messages in fields.items()
            if messages
        ]
        message = " ".join(
            [_("Check these fields: %(fields)s.") % {"fields": ", ".join(fields)}, *details]
        )
    else:
        message = _("The request is not valid.")
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
        exc = exceptions.ParseError(str(exc) or _("The request is malformed."), code="bad_request")
    if not isinstance(exc, exceptions.APIException):
        view = context.get("view")
        logger.exception("API error in %s", type(view).__name__ if view else "?", exc_info=exc)
        set_rollback()
        return Response(
            error_body("server_error", _("Something went wrong on our side; it was logged.")),
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
        if isinstance(exc, exceptions.Throttled) and message.startswith(
            str(exceptions.Throttled.default_detail)
        ):  # DRF's own text (not one of ours): ours says how long, as a plural
            seconds = int(headers["Retry-After"])
            message = ngettext(
                "Too many requests; try again in %(num)d second.",
                "Too many requests; try again in %(num)d seconds.",
                seconds,
            ) % {"num": seconds}
        body = error_body(str(code), message)
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # it changes nothing; a POST to a mistyped address gets the JSON 404, not a CSRF page
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Anything under /api/ that no route matches, in the API's error shape."""
    return JsonResponse(
        error_body("not_found", _("There is no such API address; see /api/docs/.")), status=404
    )


# --- pagination and rendering ----------------------------------------------------------------


class PagePagination(PageNumberPagination):
    """``?page=N&limit=M`` (M at most 200); the answer has count, next, previous, results."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


class SequenceCursorPagination(CursorPagination):
    """``?cursor=…`` from ``next`` / ``previous``, newest ``seq`` first: stable while new rows
    are appended (the audit log)."""

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
