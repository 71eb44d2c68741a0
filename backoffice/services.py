"""Organizations, members and properties: writes."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import Membership, Organization, Property


@transaction.atomic
def organization_create(*, name: str, owner=None) -> Organization:
    organization = Organization.objects.create(name=name)
    if owner is not None:
        Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    return organization


@transaction.atomic
def member_add(
    *, organization: Organization, email: str, password: str | None, role: str
) -> Membership:
    """Create (or reuse) the user with this email and make them a member. Email is the username."""
    User = get_user_model()
    email = email.strip().lower()
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Choose one of {', '.join(Membership.Role.values)}."})
    user = User.objects.filter(username__iexact=email).first()
    if user is None:
        if not password:
            raise ValidationError({"password": "A new member needs a password."})
        user = User.objects.create_user(username=email, email=email, password=password)
    membership, created = Membership.objects.get_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def property_create(*, organization: Organization, **fields) -> Property:
    prop = Property(organization=organization, **fields)
    prop.full_clean()
    prop.save()
    return prop
