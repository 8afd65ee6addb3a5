from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.audit import action_label
from accounts.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from accounts.preferences import time_zone_error


class UserChangeForm(DjangoUserChangeForm):
    def clean_time_zone(self) -> str:
        """Empty (not chosen yet) or a zone this server knows, as on the profile page."""
        zone = (self.cleaned_data.get("time_zone") or "").strip()
        problem = time_zone_error(zone) if zone else None
        if problem:
            raise ValidationError(problem)
        return zone


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    ordering = ["email"]
    list_display = [
        "email", "full_name", "language", "time_zone", "is_active", "is_staff", "date_joined",
    ]  # fmt: skip
    list_filter = ["is_staff", "is_superuser", "is_active", "language"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("full_name",)}),
        (_("Language and time zone"), {"fields": ("language", "time_zone")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at", "audit_head_seq"]
    search_fields = ["name", "slug"]
    readonly_fields = ["audit_head_seq", "audit_head_hash"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "organization"]
    raw_id_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "expires_at", "status"]
    list_select_related = ["organization"]
    readonly_fields = ["token_hash"]
    raw_id_fields = ["organization", "invited_by", "accepted_by"]

    @admin.display(description=_("status"))
    def status(self, invitation: Invitation) -> str:
        return invitation.get_status_display()


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "organization", "expires_at", "status"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["prefix", "token_hash", "last_used_at"]
    raw_id_fields = ["organization", "user"]

    @admin.display(description=_("status"))
    def status(self, token: ApiToken) -> str:
        return token.get_status_display()


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only, even for superusers."""

    list_display = ["seq", "organization", "created_at", "actor_label", "what", "outcome"]
    list_filter = ["action", "outcome"]
    list_select_related = ["organization"]
    search_fields = ["actor_label", "target_label", "action"]

    @admin.display(description=_("action"), ordering="action")
    def what(self, event: AuditEvent) -> str:
        return action_label(event.action)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """The signing secret is never shown here: admins rotate it on the webhook page."""

    list_display = ["url", "organization", "is_active", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["organization"]
    search_fields = ["url", "description"]
    raw_id_fields = ["organization", "created_by"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at", "event", "endpoint", "status", "attempts", "last_status_code",
        "next_attempt_at",
    ]  # fmt: skip
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
    raw_id_fields = ["endpoint", "organization"]
    readonly_fields = ["key", "payload"]
