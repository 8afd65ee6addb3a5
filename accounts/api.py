"""REST API for accounts: the organization, members, tokens, the audit log and webhooks.

Thin: every write is a service of accounts.services / accounts.webhooks, every list a
selector or the base view's organization-scoped queryset.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts import selectors, services, webhooks
from accounts.models import ApiToken, AuditEvent, Membership, WebhookDelivery, WebhookEndpoint
from accounts.permissions import PERMISSIONS, Role, role_allows
from accounts.preferences import zone_of
from accounts.selectors import AuditFilters
from accounts.spreadsheet import audit_csv_response
from accounts.tenancy.api import OrganizationAPIView
from core.api import CSVRenderer, SequenceCursorPagination, errors

# --- the organization ------------------------------------------------------------------------


class OrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="Your role here.")
    allowed_actions = serializers.ListField(
        child=serializers.CharField(),
        help_text="The actions of the permission table your role allows.",
    )


class OrganizationView(OrganizationAPIView):
    """The organization of the URL, and what you may do in it."""

    model = Membership
    permissions = {"GET": "org.view"}
    serializer_class = OrganizationSerializer

    @extend_schema(operation_id="org_retrieve", tags=["organization"], responses={
        200: OrganizationSerializer, **errors()})  # fmt: skip
    def get(self, request, *args, **kwargs):
        org, role = self.organization, self.membership.role
        data = {
            "id": org.pk,
            "name": org.name,
            "slug": org.slug,
            "role": role,
            "allowed_actions": [a for a in PERMISSIONS if role_allows(role, a)],
        }
        return Response(OrganizationSerializer(data).data)


# --- members ---------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "joined_at"]
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberListView(ListModelMixin, OrganizationAPIView):
    model = Membership
    permissions = {"GET": "member.list"}
    serializer_class = MemberSerializer

    def get_base_queryset(self):
        return selectors.member_list(self.membership)

    @extend_schema(operation_id="members_list", tags=["members"], responses={
        200: MemberSerializer(many=True), **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class MemberDetailView(OrganizationAPIView):
    model = Membership
    permissions = {"GET": "member.list", "PATCH": "member.change_role", "DELETE": "member.remove"}
    serializer_class = MemberSerializer

    def get_base_queryset(self):
        return selectors.member_list(self.membership)

    @extend_schema(operation_id="members_retrieve", tags=["members"], responses={
        200: MemberSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(MemberSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="members_change_role",
        tags=["members"],
        request=MemberRoleSerializer,
        responses={200: MemberSerializer, **errors(400, 403)},
        description="Change a member's role: never above your own, never leaving no owner.",
    )
    def patch(self, request, *args, **kwargs):
        target = self.get_object()
        body = MemberRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = services.membership_change_role(
            membership=self.membership, target=target, role=body.validated_data["role"],
            meta=self.meta,
        )  # fmt: skip
        return Response(MemberSerializer(target).data)

    @extend_schema(
        operation_id="members_remove",
        tags=["members"],
        responses={204: None, **errors(400, 403)},
        description="Remove a member; their API tokens in this organization stop at once.",
    )
    def delete(self, request, *args, **kwargs):
        services.membership_remove(
            membership=self.membership, target=self.get_object(), meta=self.meta
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tokens ----------------------------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer):
    owner = serializers.EmailField(source="user.email", read_only=True)
    status = serializers.CharField(read_only=True, help_text="active, expired or revoked.")

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "owner", "created_at", "expires_at", "last_used_at",
            "revoked_at", "status",
        ]  # fmt: skip
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=36500,
        required=False,
        allow_null=True,
        help_text="Leave out (or null) for a token that does not expire.",
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The secret. Shown only in this answer: store it now."
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenListView(ListModelMixin, OrganizationAPIView):
    """Admins see every token of the organization, others their own."""

    model = ApiToken
    permissions = {"GET": "token.list", "POST": "token.create"}
    serializer_class = TokenSerializer

    def get_base_queryset(self):
        return selectors.token_list(self.membership)

    @extend_schema(operation_id="tokens_list", tags=["tokens"], responses={
        200: TokenSerializer(many=True), **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        operation_id="tokens_create",
        tags=["tokens"],
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer, **errors(400, 403)},
        description="Create a token that acts as you. Its secret is in this answer only.",
    )
    def post(self, request, *args, **kwargs):
        body = TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            membership=self.membership,
            name=body.validated_data["name"],
            expires_in_days=body.validated_data.get("expires_in_days"),
            meta=self.meta,
        )
        token.token = raw
        return Response(
            TokenCreatedSerializer(token).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class TokenDetailView(OrganizationAPIView):
    model = ApiToken
    permissions = {"DELETE": "token.revoke"}  # someone else's: token.revoke_any (the service)
    serializer_class = TokenSerializer

    def get_base_queryset(self):
        return ApiToken.objects.select_related("user")

    @extend_schema(
        operation_id="tokens_revoke",
        tags=["tokens"],
        responses={204: None, **errors(400, 403)},
        description="Revoke a token: your own, or (admins) anyone's. It stops at once.",
    )
    def delete(self, request, *args, **kwargs):
        services.api_token_revoke(
            membership=self.membership, token=self.get_object(), meta=self.meta
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit log -------------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    target = serializers.CharField(source="target_label", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "seq", "created_at", "actor", "action", "target_type", "target_id", "target",
            "file_count", "total_bytes", "ip", "user_agent", "outcome", "detail", "hash",
            "prev_hash",
        ]  # fmt: skip
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(
        required=False, allow_blank=True, max_length=64,
        help_text="“member” matches member.*; “member.removed” matches itself.",
    )  # fmt: skip
    actor = serializers.CharField(
        required=False, allow_blank=True, max_length=254, help_text="Actor e-mail contains."
    )
    since = serializers.DateField(required=False, help_text="From this day (inclusive).")
    until = serializers.DateField(required=False, help_text="To this day (inclusive).")

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError(
                {"until": _("The end date is before the start date.")}
            )
        return attrs


def _audit_filters(request) -> AuditFilters:
    params = AuditFilterSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    return AuditFilters(**{k: v for k, v in params.validated_data.items() if v})


def _audit_csv(view: OrganizationAPIView, filters: AuditFilters):
    events = selectors.audit_events(view.membership, filters)
    return audit_csv_response(view.organization, events, zone_of(view.request.user))


CSV_RESPONSE = OpenApiResponse(
    OpenApiTypes.STR,
    description="The events as CSV (UTF-8 with a byte-order mark), newest first, streamed; "
    "times are ISO 8601 with the offset, in the token owner's time zone (named in the header).",
)


class AuditListView(OrganizationAPIView):
    """Admins and owners: the organization's audit log, newest first."""

    model = AuditEvent
    permissions = {"GET": "audit.view"}
    serializer_class = AuditEventSerializer
    pagination_class = SequenceCursorPagination
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get_base_queryset(self):
        return AuditEvent.objects.all()

    @extend_schema(
        operation_id="audit_list",
        tags=["audit"],
        parameters=[AuditFilterSerializer],
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, "text/csv"): CSV_RESPONSE,
            **errors(400, 403, media_type="application/json"),
        },
        description="Cursor-paginated (follow `next`). `?format=csv` streams every matching "
        "event as CSV instead (needs audit.export).",
    )
    def get(self, request, *args, **kwargs):
        filters = _audit_filters(request)
        if request.accepted_renderer.format == "csv":
            self.require("audit.export")
            return _audit_csv(self, filters)
        events = self.get_queryset() & selectors.audit_events(self.membership, filters)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)


class AuditCsvView(OrganizationAPIView):
    model = AuditEvent
    permissions = {"GET": "audit.export"}
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="audit_csv",
        tags=["audit"],
        parameters=[AuditFilterSerializer],
        responses={
            (200, "text/csv"): CSV_RESPONSE,
            **errors(400, 403, media_type="application/json"),
        },
    )
    def get(self, request, *args, **kwargs):
        return _audit_csv(self, _audit_filters(request))


# --- webhooks --------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEndpoint.Event.choices)
    )
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "is_active", "created_at", "created_by"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="http:// or https://, public hosts.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEndpoint.Event.choices),
        min_length=1,
        max_length=len(WebhookEndpoint.Event.choices),
    )
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret. Shown only in this answer: store it now.",
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret, shown only this once.")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    delivery = serializers.UUIDField(source="key", read_only=True, help_text="X-HeyGem-Delivery")
    status = serializers.CharField(read_only=True, help_text="pending, delivered or failed.")
    payload = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "delivery", "event", "status", "attempts", "last_status_code", "last_error",
            "created_at", "last_attempt_at", "next_attempt_at", "delivered_at", "payload",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, delivery: WebhookDelivery) -> dict:
        return delivery.payload


class WebhookListView(ListModelMixin, OrganizationAPIView):
    model = WebhookEndpoint
    permissions = {"GET": "webhook.manage", "POST": "webhook.manage"}
    serializer_class = WebhookEndpointSerializer

    def get_base_queryset(self):
        return WebhookEndpoint.objects.select_related("created_by").order_by("-created_at", "-id")

    @extend_schema(operation_id="webhooks_list", tags=["webhooks"], responses={
        200: WebhookEndpointSerializer(many=True), **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        operation_id="webhooks_create",
        tags=["webhooks"],
        request=WebhookEndpointWriteSerializer,
        responses={201: WebhookEndpointCreatedSerializer, **errors(400, 403)},
        description="Register an endpoint. The answer holds its signing secret, once.",
    )
    def post(self, request, *args, **kwargs):
        body = WebhookEndpointWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = webhooks.webhook_endpoint_create(
            membership=self.membership, meta=self.meta, **body.validated_data
        )
        data = WebhookEndpointCreatedSerializer(endpoint).data
        data["secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class WebhookDetailView(OrganizationAPIView):
    model = WebhookEndpoint
    permissions = {"GET": "webhook.manage", "PATCH": "webhook.manage", "DELETE": "webhook.manage"}
    serializer_class = WebhookEndpointSerializer

    def get_base_queryset(self):
        return WebhookEndpoint.objects.select_related("created_by")

    @extend_schema(operation_id="webhooks_retrieve", tags=["webhooks"], responses={
        200: WebhookEndpointSerializer, **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return Response(WebhookEndpointSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="webhooks_update",
        tags=["webhooks"],
        request=WebhookEndpointWriteSerializer(partial=True),
        responses={200: WebhookEndpointSerializer, **errors(400, 403)},
    )
    def patch(self, request, *args, **kwargs):
        endpoint = self.get_object()
        body = WebhookEndpointWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_update(
            membership=self.membership, endpoint=endpoint, meta=self.meta, **body.validated_data
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhooks_destroy", tags=["webhooks"], responses={
        204: None, **errors(403)})  # fmt: skip
    def delete(self, request, *args, **kwargs):
        webhooks.webhook_endpoint_delete(
            membership=self.membership, endpoint=self.get_object(), meta=self.meta
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(OrganizationAPIView):
    model = WebhookEndpoint
    permissions = {"POST": "webhook.manage"}
    serializer_class = WebhookSecretSerializer

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        tags=["webhooks"],
        request=None,
        responses={200: WebhookSecretSerializer, **errors(403)},
        description="Replace the signing secret; the old one stops signing at once.",
    )
    def post(self, request, *args, **kwargs):
        _, secret = webhooks.webhook_endpoint_rotate_secret(
            membership=self.membership, endpoint=self.get_object(), meta=self.meta
        )
        return Response({"secret": secret}, headers={"Cache-Control": "no-store"})


class WebhookTestView(OrganizationAPIView):
    model = WebhookEndpoint
    permissions = {"POST": "webhook.manage"}
    serializer_class = WebhookDeliverySerializer

    @extend_schema(
        operation_id="webhooks_test",
        tags=["webhooks"],
        request=None,
        responses={202: WebhookDeliverySerializer, **errors(400, 403)},
        description="Send a signed `ping` event to the endpoint now, once, without retries "
        "(paused endpoints too). Answers 202 with its delivery record; its outcome shows in "
        "`deliveries/`. At most one test event per endpoint every few seconds (400 `throttled`).",
    )
    def post(self, request, *args, **kwargs):
        delivery = webhooks.webhook_send_test(
            membership=self.membership, endpoint=self.get_object(), meta=self.meta
        )
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryListView(ListModelMixin, OrganizationAPIView):
    """The endpoint's deliveries, newest first: status, attempts, last response code."""

    model = WebhookDelivery
    permissions = {"GET": "webhook.manage"}
    serializer_class = WebhookDeliverySerializer

    def get_base_queryset(self):
        endpoint = self.scoped(WebhookEndpoint, "organization", self.kwargs["pk"])
        return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")

    @extend_schema(operation_id="webhooks_deliveries", tags=["webhooks"], responses={
        200: WebhookDeliverySerializer(many=True), **errors(403)})  # fmt: skip
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)
