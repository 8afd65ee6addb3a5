"""Pages for accounts: thin views over services and selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts import selectors, services
from accounts.audit import ACTION_LABELS, RequestMeta, action_groups, target_type_labels
from accounts.audit_detail import detail_lines
from accounts.forms import (
    AuditFilterForm,
    EmailLoginForm,
    InviteForm,
    NotificationPreferenceForm,
    OrganizationForm,
    OrganizationRenameForm,
    RoleForm,
    SignupForm,
    TokenForm,
)
from accounts.models import ApiToken, AuditEvent, Invitation, Membership, Notification, User
from accounts.permissions import ROLE_RANK, Role, roles_assignable_by
from accounts.preferences import zone_of
from accounts.spreadsheet import audit_csv_response
from accounts.tenancy import OrganizationMixin, OrganizationScopedMixin

AUDIT_PAGE_SIZE = 50
LIST_PAGE_SIZE = 50


def _add_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError onto the form, so the page keeps what was typed."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _flash_error(request: HttpRequest, exc: ValidationError | PermissionDenied) -> None:
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, text)


class EmailLoginView(LoginView):
    form_class = EmailLoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        # The first login presets the person's time zone from the browser (static/js/app.js
        # fills ``browser_time_zone`` from Intl); they change it on the profile page.
        services.time_zone_preset(
            user=form.get_user(), browser_zone=self.request.POST.get("browser_time_zone", "")
        )
        return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    first = selectors.memberships_of(request.user).order_by("organization__name").first()
    if first is None:
        return redirect("accounts:org_create")
    return redirect("accounts:org_home", org_slug=first.organization.slug)


@login_required
def org_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(
                user=request.user,
                meta=RequestMeta.from_request(request),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                _("Organization “%(name)s” created; its address is %(path)s.")
                % {"name": organization.name, "path": f"/o/{organization.slug}/"},
            )
            return redirect("accounts:org_home", org_slug=organization.slug)
    return render(request, "accounts/org_create.html", {"form": form})


class OrganizationHomeView(OrganizationMixin, TemplateView):
    permission_action = "org.view"
    template_name = "accounts/org_home.html"

    def get_context_data(self, **kwargs):
        kwargs["member_count"] = Membership.objects.filter(organization=self.organization).count()
        return super().get_context_data(**kwargs)


class OrganizationSettingsView(OrganizationMixin, TemplateView):
    permission_action = "org.update"
    template_name = "accounts/org_settings.html"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", OrganizationRenameForm(initial={"name": self.organization.name}))
        return super().get_context_data(**kwargs)

    def post(self, request, *args, **kwargs):
        form = OrganizationRenameForm(request.POST)
        if form.is_valid():
            try:
                services.organization_rename(
                    membership=self.membership,
                    name=form.cleaned_data["name"],
                    meta=RequestMeta.from_request(request),
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Organization renamed."))
                return redirect("accounts:org_settings", org_slug=self.organization.slug)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class MemberListView(OrganizationScopedMixin, TemplateView):
    permission_action = "member.list"
    model = Membership
    template_name = "accounts/members.html"

    def get_base_queryset(self):
        return Membership.objects.select_related("user").order_by("user__email")

    def get_context_data(self, **kwargs):
        page = Paginator(self.get_queryset(), LIST_PAGE_SIZE).get_page(self.request.GET.get("page"))
        kwargs.update(page=page, members=page.object_list, query="")
        # Controls only where they can work: never on someone above your own role.
        kwargs["manageable"] = {
            m.pk for m in page.object_list if ROLE_RANK[m.role] <= ROLE_RANK[self.membership.role]
        }
        kwargs["invitations"] = selectors.pending_invitations(self.membership)
        # (value, label) pairs: the role picker repeats them on every row.
        kwargs["assignable_roles"] = [
            (r.value, r.label) for r in roles_assignable_by(self.membership.role)
        ]
        kwargs.setdefault("invite_form", InviteForm(acting_role=self.membership.role))
        return super().get_context_data(**kwargs)


class InviteView(OrganizationMixin, TemplateView):
    permission_action = "member.invite"
    template_name = "accounts/invitation_created.html"

    def get(self, request, org_slug):
        """The form lives on the members page; this address only takes its POST."""
        return redirect("accounts:members", org_slug=org_slug)

    def post(self, request, *args, **kwargs):
        form = InviteForm(request.POST, acting_role=self.membership.role)
        if form.is_valid():
            try:
                invitation, raw = services.invitation_create(
                    membership=self.membership,
                    meta=RequestMeta.from_request(request),
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            except PermissionDenied as exc:
                form.add_error("role", str(exc))
            else:
                link = request.build_absolute_uri(reverse("accounts:invitation", args=[raw]))
                return self.render_to_response(
                    self.get_context_data(invitation=invitation, link=link)
                )
        view = MemberListView()
        view.setup(request, *args, **kwargs)
        view.membership, view.organization = self.membership, self.organization
        context = view.get_context_data(invite_form=form)
        return render(request, MemberListView.template_name, context, status=400)


class MemberRoleView(OrganizationScopedMixin, View):
    permission_action = "member.change_role"
    model = Membership

    def post(self, request, org_slug, pk):
        target = self.get_scoped_object(pk)
        form = RoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose one of the listed roles."))
        else:
            try:
                services.membership_change_role(
                    membership=self.membership,
                    target=target,
                    role=form.cleaned_data["role"],
                    meta=RequestMeta.from_request(request),
                )
            except (ValidationError, PermissionDenied) as exc:
                _flash_error(request, exc)
            else:
                role = Role(form.cleaned_data["role"]).label
                messages.success(
                    request,
                    _("%(email)s is now %(role)s.") % {"email": target.user.email, "role": role},
                )
        return redirect("accounts:members", org_slug=org_slug)


class MemberRemoveView(OrganizationScopedMixin, View):
    permission_action = "member.remove"
    model = Membership

    def post(self, request, org_slug, pk):
        target = self.get_scoped_object(pk)
        try:
            services.membership_remove(
                membership=self.membership, target=target, meta=RequestMeta.from_request(request)
            )
        except (ValidationError, PermissionDenied) as exc:
            _flash_error(request, exc)
        else:
            messages.success(request, _("%(email)s was removed.") % {"email": target.user.email})
        return redirect("accounts:members", org_slug=org_slug)


class InvitationRevokeView(OrganizationScopedMixin, View):
    permission_action = "invitation.revoke"
    model = Invitation

    def post(self, request, org_slug, pk):
        invitation = self.get_scoped_object(pk)
        try:
            services.invitation_revoke(
                membership=self.membership,
                invitation=invitation,
                meta=RequestMeta.from_request(request),
            )
        except ValidationError as exc:
            _flash_error(request, exc)
        else:
            messages.success(
                request,
                _("The invitation for %(email)s was withdrawn.") % {"email": invitation.email},
            )
        return redirect("accounts:members", org_slug=org_slug)


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation link opens: accept as the logged-in user, or sign up."""
    try:
        invite = services.invitation_by_token(token)
        services.invitation_check_open(invite)
    except ValidationError as exc:
        return render(
            request, "accounts/invitation.html", {"error": " ".join(exc.messages)}, status=400
        )
    user = request.user
    existing_account = not user.is_authenticated and _account_exists(invite.email)
    form = (
        SignupForm(request.POST or None, email=invite.email) if not user.is_authenticated else None
    )
    context = {"invitation": invite, "form": form, "existing_account": existing_account}
    if request.method == "POST":
        meta = RequestMeta.from_request(request)
        try:
            if user.is_authenticated:
                membership = services.invitation_accept(raw_token=token, user=user, meta=meta)
            elif existing_account:
                return redirect(f"{reverse('accounts:login')}?next={request.path}")
            elif form.is_valid():
                membership = services.invitation_accept_new_user(
                    raw_token=token,
                    full_name=form.cleaned_data["full_name"],
                    password=form.cleaned_data["password1"],
                    meta=meta,
                )
                login(request, membership.user, backend="accounts.backends.EmailBackend")
                services.time_zone_preset(
                    user=membership.user, browser_zone=request.POST.get("browser_time_zone", "")
                )
            else:
                return render(request, "accounts/invitation.html", context, status=400)
        except ValidationError as exc:
            context["error"] = " ".join(exc.messages)
            return render(request, "accounts/invitation.html", context, status=400)
        messages.success(
            request, _("Welcome to %(name)s.") % {"name": membership.organization.name}
        )
        return redirect("accounts:org_home", org_slug=membership.organization.slug)
    return render(request, "accounts/invitation.html", context)


def _account_exists(email: str) -> bool:
    return User.objects.filter(email=email).exists()


class TokenListView(OrganizationScopedMixin, TemplateView):
    permission_action = "token.list"
    model = ApiToken
    template_name = "accounts/tokens.html"

    def get_base_queryset(self):
        return selectors.token_list(self.membership)

    def get_context_data(self, **kwargs):
        page = Paginator(self.get_queryset(), LIST_PAGE_SIZE).get_page(self.request.GET.get("page"))
        kwargs.update(page=page, tokens=page.object_list, query="")
        kwargs.setdefault("form", TokenForm())
        return super().get_context_data(**kwargs)


class TokenCreateView(OrganizationMixin, TemplateView):
    permission_action = "token.create"
    template_name = "accounts/token_created.html"

    def get(self, request, org_slug):
        """The form lives on the tokens page; this address only takes its POST."""
        return redirect("accounts:tokens", org_slug=org_slug)

    def post(self, request, *args, **kwargs):
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                token, raw = services.api_token_create(
                    membership=self.membership,
                    meta=RequestMeta.from_request(request),
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                response = self.render_to_response(self.get_context_data(token=token, raw=raw))
                response["Cache-Control"] = "no-store"
                return response
        view = TokenListView()
        view.setup(request, *args, **kwargs)
        view.membership, view.organization = self.membership, self.organization
        return render(
            request, TokenListView.template_name, view.get_context_data(form=form), status=400
        )


class TokenRevokeView(OrganizationScopedMixin, View):
    permission_action = "token.revoke"
    model = ApiToken

    def post(self, request, org_slug, pk):
        token = self.get_scoped_object(pk)
        try:
            services.api_token_revoke(
                membership=self.membership, token=token, meta=RequestMeta.from_request(request)
            )
        except ValidationError as exc:
            _flash_error(request, exc)
        else:
            messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
        return redirect("accounts:tokens", org_slug=org_slug)


class AuditLogView(OrganizationMixin, TemplateView):
    permission_action = "audit.view"
    template_name = "accounts/audit_log.html"

    def get_context_data(self, **kwargs):
        form = AuditFilterForm(self.request.GET or None)
        number = self.request.GET.get("page")
        if form.is_bound and not form.is_valid():
            page = Paginator(AuditEvent.objects.none(), AUDIT_PAGE_SIZE).get_page(number)
        else:
            page = selectors.audit_page(self.membership, form.filters(), AUDIT_PAGE_SIZE, number)
        page.object_list = list(page.object_list)
        for event in page.object_list:
            event.detail_lines = detail_lines(event)
        query = self.request.GET.copy()
        query.pop("page", None)
        actions = selectors.audit_actions(self.membership)
        kwargs.update(
            form=form,
            page=page,
            query=query.urlencode(),
            actions=actions,
            action_groups=action_groups(actions),
            action_labels=ACTION_LABELS,
            target_types=target_type_labels(),
            zone_name=str(zone_of(self.request.user)),
        )
        return super().get_context_data(**kwargs)


class AuditCsvView(OrganizationMixin, View):
    permission_action = "audit.export"

    def get(self, request, org_slug):
        form = AuditFilterForm(request.GET or None)
        if form.is_bound and not form.is_valid():
            messages.error(request, _("Fix the filters before downloading the CSV."))
            return redirect("accounts:audit", org_slug=org_slug)
        events = selectors.audit_events(self.membership, form.filters())
        return audit_csv_response(self.organization, events, zone_of(request.user))


class NotificationListView(OrganizationMixin, TemplateView):
    """Your messages in this organization (bundle ready, bundle failed, …); opening the page
    marks them read."""

    permission_action = "org.view"
    template_name = "accounts/notifications.html"

    def get_context_data(self, **kwargs):
        mine = Notification.objects.filter(user=self.request.user, organization=self.organization)
        # Whether any is unread comes with the list (an uncorrelated EXISTS, run once): the
        # UPDATE, which takes the database's write lock, runs only when there is something
        # to mark.
        items = list(mine.annotate(any_unread=Exists(mine.filter(read_at=None)))[:100])
        if items and items[0].any_unread:
            services.notifications_mark_read(membership=self.membership)
        kwargs.update(notifications=items, unread_notifications=0)
        if "preference_form" not in kwargs:
            kwargs["preference_form"] = NotificationPreferenceForm.for_user(self.request.user)
        return super().get_context_data(**kwargs)


class NotificationPreferencesView(NotificationListView):
    """Switch the e-mail copies of your notifications on or off; a wrong answer shows the
    notifications page again with the error and what was sent."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = NotificationPreferenceForm(request.POST)
        if not form.is_valid():
            context = self.get_context_data(preference_form=form)
            return self.render_to_response(context, status=400)
        on = form.cleaned_data["email_notifications"]
        services.notification_preferences_update(user=request.user, email_notifications=on)
        if on:
            messages.success(
                request,
                _("E-mail notifications are on: they go to %(email)s.")
                % {"email": request.user.email},
            )
        else:
            messages.success(request, _("E-mail notifications are off."))
        return redirect("accounts:notifications", org_slug=self.organization.slug)


class NotificationUnreadView(OrganizationScopedMixin, View):
    """What the header badge polls: this user's unread count in this organization and the
    newest unread messages, as JSON. Two queries on top of the session and membership,
    however many notifications there are; reading it marks nothing read."""

    permission_action = "org.view"
    model = Notification
    latest_count = 5

    def handle_no_permission(self):
        if not self.request.user.is_authenticated:
            return JsonResponse(
                {"error": {"code": "not_authenticated", "message": _("Log in again.")}}, status=401
            )
        return super().handle_no_permission()

    def get_base_queryset(self):
        return self.model.objects.filter(user=self.request.user, read_at=None)

    def get(self, request, *args, **kwargs):
        unread = self.get_queryset()
        latest = [
            {**row, "created_at": row["created_at"].isoformat()}
            for row in unread.order_by("-created_at", "-id").values(
                "id", "kind", "level", "message", "link", "created_at"
            )[: self.latest_count]
        ]
        response = JsonResponse({"unread": unread.count(), "latest": latest})
        add_never_cache_headers(response)
        return response
