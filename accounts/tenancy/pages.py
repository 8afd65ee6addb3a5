"""Tenancy for views: the organization is resolved once per request, and querysets are
always scoped to it.

``OrganizationMixin`` turns ``/o/<org_slug>/…`` into ``self.membership`` (404 for a
non-member) and checks ``permission_action`` against the permission table (403 when the role
is too low). ``OrganizationScopedMixin`` adds a queryset that is always filtered by that
organization; subclasses may narrow it through ``get_base_queryset`` but may not override
``get_queryset`` — the only way around the scope is the deliberately named
``dangerously_get_unscoped_queryset``.
"""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from accounts.models import Membership, Organization
from accounts.permissions import role_allows
from accounts.selectors import membership_for


class OrganizationMixin(LoginRequiredMixin):
    permission_action: ClassVar[str] = "org.view"
    membership: Membership
    organization: Organization

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.membership = membership_for(request.user, kwargs["org_slug"])
        self.organization = self.membership.organization
        request.membership = self.membership
        if not role_allows(self.membership.role, self.permission_action):
            raise PermissionDenied(
                _("Your role (%(role)s) may not do this here.")
                % {"role": self.membership.get_role_display()}
            )
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("membership", self.membership)
        kwargs.setdefault("organization", self.organization)
        return super().get_context_data(**kwargs)


class OrganizationScopedMixin(OrganizationMixin):
    model: ClassVar[type[Model]]
    # How the model reaches its organization, e.g. "organization" or "project__organization".
    organization_lookup: ClassVar[str] = "organization"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset(); override get_base_queryset() "
                "instead, so the organization scope cannot be dropped."
            )

    def get_base_queryset(self) -> QuerySet:
        return self.model._default_manager.all()

    def dangerously_get_unscoped_queryset(self) -> QuerySet:
        return self.get_base_queryset()

    def get_queryset(self) -> QuerySet:
        return self.get_base_queryset().filter(**{self.organization_lookup: self.organization})

    def get_scoped_object(self, pk) -> Model:
        """The row ``pk`` of this organization: 404 for missing and foreign alike."""
        return get_object_or_404(self.get_queryset(), pk=pk)
