"""Organizations, members and properties: writes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .models import Membership, Organization, Property
from .tenancy import owners_of, owns

NEEDS_AN_OWNER = "An organization needs an owner: make someone else owner first."


@transaction.atomic
def organization_create(*, name: str, owner: Any = None) -> Organization:
    organization = Organization.objects.create(name=name)
    if owner is not None:
        Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    return organization


def _locked(organization: Organization) -> None:
    """Membership changes of one organization one at a time: two owners who each demote or
    remove the other at once would otherwise both see another owner and leave none."""
    Organization.objects.select_for_update().filter(pk=organization.pk).exists()


def _other_owner(membership: Membership) -> bool:
    return owners_of(membership.organization_id).exclude(pk=membership.pk).exists()


def _user_for(email: str, password: str | None) -> Any:
    User = get_user_model()
    user = User.objects.filter(username__iexact=email).first()
    if user is not None:
        return user
    if not password:
        raise ValidationError({"password": "A new member needs a password."})
    try:
        with transaction.atomic():  # two owners inviting the same new address at once
            return User.objects.create_user(username=email, email=email, password=password)
    except IntegrityError:
        return User.objects.get(username__iexact=email)


@transaction.atomic
def member_add(
    *, organization: Organization, email: str, password: str | None, role: str
) -> Membership:
    """Create (or reuse) the user with this email and make them a member. Email is the username.
    A member already there gets the role, unless that would leave the organization no owner."""
    email = email.strip().lower()
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Choose one of {', '.join(Membership.Role.values)}."})
    _locked(organization)
    user = _user_for(email, password)
    membership, created = Membership.objects.get_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    if not created and membership.role != role:
        if owns(membership) and not _other_owner(membership):
            raise ValidationError({"role": NEEDS_AN_OWNER})
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(membership: Membership) -> None:
    """Remove a member, never the organization's last owner."""
    _locked(membership.organization)
    current = Membership.objects.filter(pk=membership.pk).first()  # as it is now, under the lock
    if current is None:
        return  # removed by someone else meanwhile
    if owns(current) and not _other_owner(current):
        raise ValidationError({"role": NEEDS_AN_OWNER})
    current.delete()


def property_create(*, organization: Organization, **fields: Any) -> Property:
    prop = Property(organization=organization, **fields)
    prop.full_clean()
    prop.save()
    return prop
