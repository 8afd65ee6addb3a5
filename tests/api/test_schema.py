"""The OpenAPI schema, its offline viewers, and schemathesis against it: generated requests
to every operation, authenticated with a real token, never answered with a 5xx, and always
answered as the schema says."""

from __future__ import annotations

import re

import pytest
import schemathesis
import yaml
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiToken, Membership, WebhookEndpoint
from accounts.permissions import Role
from exports.models import Export
from heygem_site.wsgi import application
from jobs.models import Asset, Batch, Output, Project, RenderJob
from tests.api.helpers import build_world
from tests.factories import MembershipFactory, OrganizationFactory

CDN = re.compile(rb"(cdn\.jsdelivr|unpkg\.com|cdnjs|googleapis|//cdn\.)", re.I)


@pytest.mark.django_db
def test_schema_has_no_warnings(tmp_path):
    """``manage.py spectacular --fail-on-warn`` passes."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    assert "/api/v1/orgs/{org_slug}/batches/" in paths
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operation_ids = [op["operationId"] for path in paths.values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.django_db
def test_schema_and_viewers_are_served_offline(client):
    schema = client.get(reverse("api:schema"), headers={"Accept": "application/json"})
    assert schema.status_code == 200 and b"HeyGem Studio API" in schema.content
    for name in ("api:docs", "api:redoc"):
        page = client.get(reverse(name))
        assert page.status_code == 200
        assert b"/static/drf_spectacular_sidecar/" in page.content
        assert not CDN.search(page.content), f"{name} loads something from a CDN"
    swagger_js = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert client.get(swagger_js).status_code == 200


@pytest.mark.django_db
def test_unknown_api_addresses_answer_in_the_error_shape(client):
    response = client.get("/api/v2/whatever")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- schemathesis ----------------------------------------------------------------------------


@pytest.fixture
def fuzz_world(db, settings):
    """An owner's token and a world of real objects whose ids the generated requests use."""
    settings.ASSET_MAX_BYTES = 200_000
    org = OrganizationFactory(name="Acme Media", slug="acme")
    owner = MembershipFactory(organization=org, role=Role.OWNER)
    world = build_world(org, owner)
    from accounts import services

    token, raw = services.api_token_create(membership=owner, name="fuzz", expires_in_days=None)
    ids = {
        "members": list(Membership.objects.filter(organization=org).exclude(pk=owner.pk)
                        .values_list("pk", flat=True)),
        "tokens": list(ApiToken.objects.filter(organization=org).exclude(pk=token.pk)
                       .values_list("pk", flat=True)),
        "webhooks": [world.webhook.pk],
        "projects": list(Project.objects.filter(organization=org).values_list("pk", flat=True)),
        "batches": list(Batch.objects.filter(project__organization=org)
                        .values_list("pk", flat=True)),
        "jobs": list(RenderJob.objects.filter(batch__project__organization=org)
                     .values_list("pk", flat=True)),
        "outputs": [world.output.pk],
        "exports": list(Export.objects.filter(organization=org).values_list("pk", flat=True)),
        "assets": list(Asset.objects.filter(organization=org).values_list("pk", flat=True)),
    }  # fmt: skip
    assert Output.objects.exists() and WebhookEndpoint.objects.exists()
    return raw, ids


@pytest.fixture
def in_process(db):
    """Requests go to the WSGI app in this thread, inside the test's transaction: the
    connection must not be recycled between requests (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loaded from the WSGI app itself (no server, no database needed to build it).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# Examples and fuzzing (bounded below); the coverage phase's thousands of boundary cases
# would take minutes.
schema.config.phases.coverage.enabled = False


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, in_process, fuzz_world):
    raw, ids = fuzz_world
    if "org_slug" in (case.path_parameters or {}):
        case.path_parameters["org_slug"] = "acme"
    if "id" in (case.path_parameters or {}):
        # Half of the cases aim at real objects of the organization, the rest at random ids.
        kind = case.path.split("/")[5]
        real = ids.get(kind) or [0]
        value = case.path_parameters["id"]
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters["id"] = real[(value // 2) % len(real)]
    response = case.call(headers={"Authorization": f"Bearer {raw}"})
    # No 5xx, and every answer is one the schema documents (status, content type, body).
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
