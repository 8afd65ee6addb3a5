"""Fixtures for the REST API tests: tokens, an authenticated client, quiet throttles."""

from __future__ import annotations

import copy

import pytest

from accounts import services
from accounts.permissions import Role, role_allows
from tests.api.helpers import Api


@pytest.fixture(autouse=True)
def _api_settings(settings):
    """Throttling off (its own tests turn it on with low rates) and private webhook
    destinations refused, as in production."""
    settings.API_THROTTLE_TOKEN = ""
    settings.API_THROTTLE_IP = ""
    settings.WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def make_token(db):
    def make(membership, name: str = "script", expires_in_days: int | None = None) -> str:
        """A real token of ``membership``. Viewers may not create tokens, so theirs is made
        as a member would have (a token of someone demoted to viewer since)."""
        creator = copy.copy(membership)
        if not role_allows(creator.role, "token.create"):
            creator.role = Role.MEMBER
        _, raw = services.api_token_create(
            membership=creator, name=name, expires_in_days=expires_in_days
        )
        return raw

    return make


@pytest.fixture
def api_as(client, make_token):
    """``api_as(membership)`` -> an Api acting with a fresh token of that membership."""

    def make(membership, slug: str | None = None) -> Api:
        return Api(client, make_token(membership), slug or membership.organization.slug)

    return make
