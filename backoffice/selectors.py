"""Reads scoped to what a user may see. Every view and API goes through these."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Membership, Organization, Property


def organization_ids_for(user) -> list[int] | None:
    """Return the ids of the user's organizations, or None for staff (who see everything)."""
    if not user or not user.is_authenticated:
        return []
    if user.is_staff:
        return None
    return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))


def scope_to_user(queryset: QuerySet, user, path: str = "organization") -> QuerySet:
    """Filter `queryset` to rows whose `path` organization the user belongs to."""
    ids = organization_ids_for(user)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{path}__in": ids})


def role_in(user, organization_id: int | None) -> str | None:
    """Return the user's role in the organization ('owner' for staff), or None."""
    if not user or not user.is_authenticated or organization_id is None:
        return None
    if user.is_staff:
        return Membership.Role.OWNER
    membership = (
        Membership.objects.filter(user=user, organization_id=organization_id).only("role").first()
    )
    return membership.role if membership else None


def can_edit(user, organization_id: int | None) -> bool:
    return role_in(user, organization_id) in (Membership.Role.OWNER, Membership.Role.MANAGER)


def organizations_for(user) -> QuerySet:
    return scope_to_user(Organization.objects.all(), user, "pk")


def properties_for(user) -> QuerySet:
    return scope_to_user(Property.objects.select_related("organization"), user)
