"""Tenancy, done once: the organization is resolved from the URL into the acting membership
once per request, and every queryset is scoped to it.

- ``accounts.tenancy.pages``: the dashboard's view mixins (``/o/<org_slug>/…``);
- ``accounts.tenancy.api``: the API's base view (``/api/v1/orgs/<org_slug>/…``), token
  authentication and the per-token throttle.
"""

from accounts.tenancy.pages import OrganizationMixin, OrganizationScopedMixin

__all__ = ["OrganizationMixin", "OrganizationScopedMixin"]
