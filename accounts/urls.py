from django.contrib.auth.views import LogoutView
from django.urls import path

from accounts import profile_views, views, webhook_views

app_name = "accounts"

org = "o/<slug:org_slug>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.EmailLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("profile/", profile_views.profile, name="profile"),
    path("language/", profile_views.set_language, name="set_language"),
    path("invite/<str:token>/", views.invitation, name="invitation"),
    path("orgs/new/", views.org_create, name="org_create"),
    path(org, views.OrganizationHomeView.as_view(), name="org_home"),
    path(org + "settings/", views.OrganizationSettingsView.as_view(), name="org_settings"),
    path(org + "members/", views.MemberListView.as_view(), name="members"),
    path(org + "members/invite/", views.InviteView.as_view(), name="invite"),
    path(org + "members/<int:pk>/role/", views.MemberRoleView.as_view(), name="member_role"),
    path(org + "members/<int:pk>/remove/", views.MemberRemoveView.as_view(), name="member_remove"),
    path(
        org + "invitations/<int:pk>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="invitation_revoke",
    ),
    path(org + "tokens/", views.TokenListView.as_view(), name="tokens"),
    path(org + "tokens/new/", views.TokenCreateView.as_view(), name="token_create"),
    path(org + "tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="token_revoke"),
    path(org + "notifications/", views.NotificationListView.as_view(), name="notifications"),
    path(org + "audit/", views.AuditLogView.as_view(), name="audit"),
    path(org + "audit.csv", views.AuditCsvView.as_view(), name="audit_csv"),
    path(org + "webhooks/", webhook_views.WebhookListView.as_view(), name="webhooks"),
    path(org + "webhooks/new/", webhook_views.WebhookCreateView.as_view(), name="webhook_create"),
    path(org + "webhooks/<int:pk>/", webhook_views.WebhookDetailView.as_view(), name="webhook"),
    path(
        org + "webhooks/<int:pk>/delete/",
        webhook_views.WebhookDeleteView.as_view(),
        name="webhook_delete",
    ),
    path(
        org + "webhooks/<int:pk>/toggle/",
        webhook_views.WebhookToggleView.as_view(),
        name="webhook_toggle",
    ),
    path(
        org + "webhooks/<int:pk>/test/",
        webhook_views.WebhookTestView.as_view(),
        name="webhook_test",
    ),
    path(
        org + "webhooks/<int:pk>/rotate/",
        webhook_views.WebhookRotateSecretView.as_view(),
        name="webhook_rotate",
    ),
    path(
        org + "notifications/unread.json",
        views.NotificationUnreadView.as_view(),
        name="notifications_unread",
    ),
    path(
        org + "notifications/preferences/",
        views.NotificationPreferencesView.as_view(),
        name="notification_preferences",
    ),
]
