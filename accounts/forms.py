from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import User, normalize_email
from accounts.permissions import Role, roles_assignable_by
from accounts.selectors import AuditFilters


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("E-mail"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_username(self):
        return normalize_email(self.cleaned_data["username"])


class OrganizationForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), min_length=2, max_length=100, help_text=_("Shown to your team.")
    )
    slug = forms.SlugField(
        label=_("Address (optional)"),
        max_length=50,
        required=False,
        help_text=_(
            "Used in links: /o/<address>/. Leave it empty to make it from the name (“华东经销商” "
            "becomes huadong-jingxiaoshang), or type lower-case letters, digits and hyphens."
        ),
    )


class OrganizationRenameForm(forms.Form):
    name = forms.CharField(label=_("Name"), min_length=2, max_length=100)


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, acting_role: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r.value, r.label) for r in roles_assignable_by(acting_role)]


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class SignupForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label=_("Your name"))
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email  # the invitation's: the password may not resemble it

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            try:
                someone = User(email=self.email, full_name=cleaned.get("full_name") or "")
                password_validation.validate_password(p1, user=someone)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What will use it, e.g. “nightly batch script”."),
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"),
        min_value=1,
        required=False,
        initial=90,
        help_text=_("Leave empty for a token that does not expire."),
    )


class AuditFilterForm(forms.Form):
    action = forms.CharField(label=_("Action type"), required=False, max_length=64)
    actor = forms.CharField(required=False, max_length=254, label=_("Actor e-mail contains"))
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> AuditFilters:
        if not self.is_valid():
            return AuditFilters()
        return AuditFilters(**{k: v for k, v in self.cleaned_data.items() if v})


class NotificationPreferenceForm(forms.Form):
    """Whether the in-app notifications also come by e-mail (for all your organizations)."""

    email_notifications = forms.TypedChoiceField(
        label=_("E-mail notifications"),
        choices=[
            ("off", _("Off: only here, in the app")),
            ("on", _("On: also e-mail me when a batch finishes or a bundle is ready or failed")),
        ],
        coerce=lambda value: value == "on",
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose whether you want these e-mails.")},
    )

    @classmethod
    def for_user(cls, user) -> "NotificationPreferenceForm":
        return cls(initial={"email_notifications": "on" if user.email_notifications else "off"})
