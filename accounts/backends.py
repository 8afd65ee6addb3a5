from django.contrib.auth.backends import ModelBackend

from accounts.models import normalize_email


class EmailBackend(ModelBackend):
    """Log in by e-mail, case-insensitively."""

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        return super().authenticate(
            request, username=normalize_email(email or username or ""), password=password, **kwargs
        )


def login_name(request, credentials: dict | None) -> str:
    """The name the login lockout counts failures by: the e-mail, as the backend reads it."""
    raw = (credentials or {}).get("username") or (credentials or {}).get("email") or ""
    if not raw and request is not None:
        raw = request.POST.get("username", "")
    return normalize_email(raw)
