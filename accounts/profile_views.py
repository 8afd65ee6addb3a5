"""A person's own settings: the language switch (every page, signed in or not) and the
profile page (language, time zone)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import services
from accounts.preferences import time_zone_names, valid_language, zone_label
from core.http import same_site_path


class ProfileForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False)
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        help_text=gettext_lazy(
            "Every time on the pages, in e-mails and in CSV files is shown in it."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from django.conf import settings

        self.fields["language"].choices = [("", _("The browser's language"))] + [
            (code, name) for code, name in settings.LANGUAGES
        ]
        self.fields["time_zone"].choices = [(name, name) for name in time_zone_names()]


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                services.profile_update(
                    user=user,
                    language=form.cleaned_data["language"],
                    time_zone=form.cleaned_data["time_zone"],
                )
            except ValidationError as exc:
                for field, errors in exc.error_dict.items():
                    form.add_error(field, errors)
            else:
                if user.language:
                    translation.activate(user.language)
                messages.success(request, _("Your settings are saved."))
                response = redirect("accounts:profile")
                _remember_language(response, user.language)
                return response
    else:
        form = ProfileForm(
            initial={"language": user.language, "time_zone": user.time_zone or "UTC"}
        )
    return render(request, "accounts/profile.html", {"form": form, "zone_now": zone_label()})


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The switch: remembered in a cookie, and as the person's choice when signed in."""
    code = request.POST.get("language", "")
    back = same_site_path(request, request.POST.get("next")) or "/"
    if not valid_language(code):
        messages.error(request, _("Choose one of the languages offered."))
        return redirect(back)
    if request.user.is_authenticated:
        services.language_choose(user=request.user, language=code)
    response = redirect(back)
    _remember_language(response, code)
    return response


def _remember_language(response: HttpResponse, code: str) -> None:
    from django.conf import settings

    if not code:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        code,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=True,
    )
