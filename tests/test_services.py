"""Business rules of accounts.services, with a second organization to catch leaks."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken, AuditEvent, Invitation, Membership, Organization, User
from accounts.permissions import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _state():
    """A fingerprint of everything a refused call must leave untouched."""
    return (
        list(Organization.objects.values_list("pk", "name", "slug", "audit_head_seq")),
        list(Membership.objects.values_list("pk", "role")),
        list(Invitation.objects.values_list("pk", "accepted_at", "revoked_at")),
        list(ApiToken.objects.values_list("pk", "revoked_at")),
        AuditEvent.objects.count(),
        User.objects.count(),
    )


class TestOrganizationCreate:
    def test_creator_becomes_owner_and_it_is_audited(self):
        user = UserFactory()
        org = services.organization_create(user=user, name="  Acme  ", slug="Acme-Media")
        assert (org.name, org.slug) == ("Acme", "acme-media")
        assert Membership.objects.get(organization=org).role == Role.OWNER
        assert list(org.audit_events.order_by("seq").values_list("action", flat=True)) == [
            "org.created",
            "member.added",
        ]

    @pytest.mark.parametrize(
        ("name", "slug", "field"),
        [
            ("", "ok", "name"),
            ("x" * 101, "ok", "name"),
            ("", "", "name"),  # an empty address is made from the name: not from no name
            ("Fine", "a/b", "slug"),
            ("Fine", "../etc", "slug"),
            ("Fine", "-leading", "slug"),
            ("Fine", "x" * 51, "slug"),
            ("Fine", "admin", "slug"),
            ("Fine", "taken", "slug"),
        ],
    )
    def test_bad_names_and_slugs_are_refused_and_change_nothing(self, name, slug, field):
        services.organization_create(user=UserFactory(), name="Taken", slug="taken")
        user = UserFactory()
        before = _state()
        with pytest.raises(ValidationError) as info:
            services.organization_create(user=user, name=name, slug=slug)
        assert field in info.value.message_dict
        assert _state() == before


class TestInvitations:
    def test_invite_and_accept_as_existing_user(self, admin, other_org):
        user = UserFactory(email="Guest@Example.com".lower())
        invitation, raw = services.invitation_create(
            membership=admin, email="  GUEST@example.COM ", role=Role.MEMBER
        )
        assert invitation.email == "guest@example.com"
        assert invitation.token_hash != raw and raw not in invitation.token_hash
        membership = services.invitation_accept(raw_token=raw, user=user)
        assert membership.organization == admin.organization
        assert membership.role == Role.MEMBER
        assert not Membership.objects.filter(user=user, organization=other_org).exists()
        assert AuditEvent.objects.filter(action="invitation.accepted").count() == 1

    def test_invitation_link_is_emailed(self, admin, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _, raw = services.invitation_create(membership=admin, email="a@b.test", role="viewer")
        assert len(mail.outbox) == 1
        assert raw in mail.outbox[0].body

    def test_accept_creates_the_account_when_new(self, admin):
        _, raw = services.invitation_create(membership=admin, email="fresh@x.test", role="viewer")
        membership = services.invitation_accept_new_user(
            raw_token=raw, full_name="Fresh", password="a-long-enough-password"
        )
        assert membership.user.email == "fresh@x.test"
        assert membership.user.check_password("a-long-enough-password")
        assert membership.role == Role.VIEWER

    def test_cannot_invite_above_own_role(self, admin):
        before = _state()
        with pytest.raises(PermissionDenied):
            services.invitation_create(membership=admin, email="x@y.test", role=Role.OWNER)
        assert _state() == before

    def test_member_may_not_invite(self, member):
        with pytest.raises(PermissionDenied):
            services.invitation_create(membership=member, email="x@y.test", role=Role.VIEWER)

    def test_existing_member_cannot_be_invited(self, admin, member):
        with pytest.raises(ValidationError, match="already a member"):
            services.invitation_create(membership=admin, email="MEMBER@acme.test", role="viewer")

    @pytest.mark.parametrize("bad", ["", "not-an-email", "a@", "x" * 250 + "@x.test"])
    def test_bad_email(self, admin, bad):
        before = _state()
        with pytest.raises(ValidationError):
            services.invitation_create(membership=admin, email=bad, role="viewer")
        assert _state() == before

    def test_expired_invitation_is_refused(self, admin):
        invitation, raw = services.invitation_create(
            membership=admin, email="e@x.test", role="viewer"
        )
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
        user = UserFactory(email="e@x.test")
        before = _state()
        with pytest.raises(ValidationError, match="expired"):
            services.invitation_accept(raw_token=raw, user=user)
        assert _state() == before

    def test_reused_invitation_is_refused(self, admin):
        _, raw = services.invitation_create(membership=admin, email="r@x.test", role="viewer")
        user = UserFactory(email="r@x.test")
        services.invitation_accept(raw_token=raw, user=user)
        before = _state()
        with pytest.raises(ValidationError, match="already been used"):
            services.invitation_accept(raw_token=raw, user=user)
        with pytest.raises(ValidationError, match="already been used"):
            services.invitation_accept_new_user(raw_token=raw, full_name="", password="x" * 12)
        assert _state() == before

    def test_invitation_for_another_email_is_refused(self, admin):
        _, raw = services.invitation_create(membership=admin, email="right@x.test", role="viewer")
        wrong = UserFactory(email="wrong@x.test")
        before = _state()
        with pytest.raises(ValidationError, match=r"right@x\.test"):
            services.invitation_accept(raw_token=raw, user=wrong)
        assert _state() == before

    def test_new_account_for_existing_email_is_refused(self, admin):
        _, raw = services.invitation_create(membership=admin, email="has@x.test", role="viewer")
        UserFactory(email="has@x.test")
        before = _state()
        with pytest.raises(ValidationError, match="already exists"):
            services.invitation_accept_new_user(raw_token=raw, full_name="", password="x" * 12)
        assert _state() == before

    def test_forged_token(self):
        with pytest.raises(ValidationError, match="not valid"):
            services.invitation_by_token("forged")

    def test_reinvite_replaces_pending(self, admin):
        _first, raw1 = services.invitation_create(membership=admin, email="p@x.test", role="viewer")
        services.invitation_create(membership=admin, email="p@x.test", role="member")
        with pytest.raises(ValidationError, match="withdrawn"):
            services.invitation_accept(raw_token=raw1, user=UserFactory(email="p@x.test"))

    def test_revoke_only_in_own_organization(self, admin, outsider):
        invitation, _ = services.invitation_create(
            membership=outsider, email="z@x.test", role="viewer"
        )
        with pytest.raises(Invitation.DoesNotExist):
            services.invitation_revoke(membership=admin, invitation=invitation)
        assert Invitation.objects.get(pk=invitation.pk).revoked_at is None


class TestRoles:
    def test_last_owner_cannot_be_demoted(self, owner, admin):
        before = _state()
        with pytest.raises(ValidationError, match="last owner"):
            services.membership_change_role(membership=owner, target=owner, role=Role.ADMIN)
        assert _state() == before

    def test_last_owner_cannot_be_removed(self, owner):
        before = _state()
        with pytest.raises(ValidationError, match="last owner"):
            services.membership_remove(membership=owner, target=owner)
        assert _state() == before

    def test_owner_can_be_demoted_when_another_owner_exists(self, owner, make_member, org):
        second = make_member(org, Role.OWNER)
        services.membership_change_role(membership=second, target=owner, role=Role.ADMIN)
        assert Membership.objects.get(pk=owner.pk).role == Role.ADMIN

    def test_admin_cannot_touch_an_owner(self, owner, admin):
        with pytest.raises(PermissionDenied):
            services.membership_change_role(membership=admin, target=owner, role=Role.VIEWER)
        with pytest.raises(PermissionDenied):
            services.membership_remove(membership=admin, target=owner)
        assert Membership.objects.get(pk=owner.pk).role == Role.OWNER

    def test_admin_cannot_promote_to_owner(self, admin, member):
        with pytest.raises(PermissionDenied):
            services.membership_change_role(membership=admin, target=member, role=Role.OWNER)

    def test_unknown_role(self, owner, member):
        with pytest.raises(ValidationError, match="not a role"):
            services.membership_change_role(membership=owner, target=member, role="god")

    def test_role_change_is_audited(self, owner, member):
        services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
        event = AuditEvent.objects.get(action="member.role_changed")
        assert event.detail == {"from": "member", "to": "viewer"}
        assert event.actor == owner.user and event.actor_label == "owner@acme.test"

    def test_cannot_act_on_another_organizations_member(self, owner, outsider):
        with pytest.raises(Membership.DoesNotExist):
            services.membership_change_role(membership=owner, target=outsider, role="viewer")
        with pytest.raises(Membership.DoesNotExist):
            services.membership_remove(membership=owner, target=outsider)
        assert Membership.objects.get(pk=outsider.pk).role == Role.OWNER

    def test_removal_revokes_that_members_tokens(self, owner, member):
        token, raw = services.api_token_create(membership=member, name="x", expires_in_days=None)
        assert services.api_token_authenticate(raw) is not None
        services.membership_remove(membership=owner, target=member)
        assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
        assert services.api_token_authenticate(raw) is None


class TestTokens:
    def test_token_is_hashed_and_shown_once(self, member):
        token, raw = services.api_token_create(membership=member, name="ci", expires_in_days=30)
        assert raw.startswith(f"hgm_{token.prefix}_")
        assert raw not in token.token_hash
        found_token, found_membership = services.api_token_authenticate(raw)
        assert found_token == token and found_membership == member
        assert ApiToken.objects.get(pk=token.pk).last_used_at is not None

    def test_token_never_grants_more_than_the_current_role(self, owner, member):
        _, raw = services.api_token_create(membership=member, name="ci", expires_in_days=None)
        services.membership_change_role(membership=owner, target=member, role=Role.VIEWER)
        assert services.api_token_authenticate(raw)[1].role == Role.VIEWER

    def test_expired_revoked_and_wrong_tokens_fail(self, member):
        token, raw = services.api_token_create(membership=member, name="ci", expires_in_days=1)
        assert services.api_token_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
        assert services.api_token_authenticate("garbage") is None
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
        assert services.api_token_authenticate(raw) is None
        ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
        services.api_token_revoke(membership=member, token=token)
        assert services.api_token_authenticate(raw) is None

    @pytest.mark.parametrize(
        ("name", "days"), [("", None), ("x" * 101, None), ("ok", 0), ("ok", 10**6)]
    )
    def test_bad_token_input(self, member, name, days):
        before = _state()
        with pytest.raises(ValidationError):
            services.api_token_create(membership=member, name=name, expires_in_days=days)
        assert _state() == before

    def test_member_cannot_revoke_someone_elses_token(self, member, admin):
        token, _ = services.api_token_create(membership=admin, name="a", expires_in_days=None)
        with pytest.raises(PermissionDenied):
            services.api_token_revoke(membership=member, token=token)
        services.api_token_revoke(membership=admin, token=token)
        with pytest.raises(ValidationError, match="already revoked"):
            services.api_token_revoke(membership=admin, token=token)

    def test_viewer_cannot_create_tokens(self, viewer):
        with pytest.raises(PermissionDenied):
            services.api_token_create(membership=viewer, name="x", expires_in_days=None)
