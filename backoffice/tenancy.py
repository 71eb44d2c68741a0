"""Tenant isolation: which organizations a user may read and write in, and the one set of
helpers every view, serializer, portal form and API filter uses to see and accept only
their objects. The write rule itself is one property, Membership.can_write; `can_write`,
`writable_organization_ids` and everything built on them ask it. The owner rule (members,
payouts, payments, refunds, statements) is one property too, Membership.is_owner; `owns`
(a membership in hand), `is_owner` (user and organization), `owned_organization_ids`,
`require_owner_somewhere`, `owners_of` (the query form) and everything built on them ask it,
and no other module restates it (tests/backoffice/test_owner_rule.py). `require_role`
answers a page with 404 / 403 by both.

Scoping: `readable(queryset, user)` and `writable(queryset, user)` restrict any
tenant-owned queryset, following the model's declared path to its organization.

A referenced object of another organization is treated exactly like one that does not
exist (same message, same status), so a write can neither touch nor reveal it.

This app sits at the bottom of the layers, so it never imports the models of the apps
above it: models are named by their label ("chargers.charger") in ORGANIZATION_PATHS.
"""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404
from django_filters import rest_framework as drf_filters
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.relations import ManyRelatedField, RelatedField

from .models import Membership, Organization, Property

# How each tenant-owned model reaches its organization (ORM paths, OR-ed together).
# A model used as a relation in a write must be listed here: scoping an unknown model
# raises, so a new relation cannot silently skip the check.
ORGANIZATION_PATHS: dict[str, tuple[str, ...]] = {
    "backoffice.organization": ("pk",),
    "backoffice.membership": ("organization",),
    "backoffice.property": ("organization",),
    "authorization.mobilityserviceprovider": ("organization",),
    "authorization.token": ("organization", "msp__organization"),
    "authorization.tokengroup": ("organization",),
    "authorization.authorizationdecision": ("organization",),
    "chargers.charger": ("property__organization",),
    "chargers.chargingsession": ("charger__property__organization",),
    "billing.rate": ("property__organization",),
    "billing.payment": ("organization",),
    "billing.payout": ("organization",),
    "billing.subscriptionplan": ("property__organization",),
    "stays.unit": ("property__organization",),
    "stays.staypolicy": ("property__organization",),
    "stays.reservation": ("property__organization",),
    "stays.calendarfeed": ("property__organization",),
    "stays.pmsintegration": ("organization",),
    "stays.listing": ("integration__organization",),
    "roaming.partner": ("organization",),
    "roaming.accesspointfeed": ("organization",),
    "roaming.pushedtoken": ("organization",),
    "roaming.emspidentity": ("organization",),
    "roaming.partnerlocation": ("organization",),
    "roaming.partnertariff": ("organization",),
    "roaming.partnersession": ("organization",),
    "roaming.partnercdr": ("organization",),
    "roaming.hubparty": ("partner__organization",),
    "roaming.remotecommand": ("partner__organization",),
    "roaming.delivery": ("partner__organization",),
    "roaming.cdr": ("partner__organization",),
    "roaming.ocpilog": ("partner__organization",),
    "roaming.locationprofile": ("property__organization",),
    "power.sitebudget": ("property__organization",),
    "power.circuit": ("property__organization",),
    "power.connectorpower": ("charger__property__organization",),
    "power.connectorallocation": ("property__organization",),
    "power.allocationsample": ("property__organization",),
    "roaming.evseprofile": ("charger__property__organization",),
    "roaming.parkingplace": ("property__organization",),
    "roaming.parkingevse": ("parking__property__organization",),
    "roaming.terminal": ("organization",),
    "roaming.terminalassignment": ("terminal__organization",),
    "roaming.terminalpayment": ("organization",),
    "roaming.financialadviceconfirmation": ("organization",),
    "fleet.firmwarerelease": ("organization",),
    "fleet.campaign": ("organization",),
    "fleet.campaigntarget": ("campaign__organization",),
    "fleet.maintenancewindow": ("property__organization",),
    "fleet.baseline": ("organization",),
    "fleet.baselinesetting": ("baseline__organization",),
    "fleet.baselineapplication": ("baseline__organization",),
}


class UnscopedModel(LookupError):
    """A relation to a model whose organization path is not declared in ORGANIZATION_PATHS."""


def _memberships(user: Any) -> list[Membership] | None:
    """The user's memberships; None for staff (who act as owners everywhere)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    if user.is_staff:
        return None
    return list(Membership.objects.filter(user=user).only("organization_id", "role"))


def membership_in(user: Any, organization: Organization | int | None) -> Membership | None:
    """Return the user's membership of the organization, or None.

    Staff get an unsaved owner's membership: they may do everything everywhere.
    """
    organization_id = organization.pk if isinstance(organization, Organization) else organization
    if user is None or not getattr(user, "is_authenticated", False) or organization_id is None:
        return None
    if user.is_staff:
        return Membership(user=user, organization_id=organization_id, role=Membership.Role.OWNER)
    return (
        Membership.objects.filter(user=user, organization_id=organization_id)
        .only("organization_id", "role")
        .first()
    )


def role_in(user: Any, organization: Organization | int | None) -> str | None:
    """Return the user's role in the organization ('owner' for staff), or None."""
    membership = membership_in(user, organization)
    return membership.role if membership else None


def can_write(user: Any, organization: Organization | int | None) -> bool:
    """Whether the user may change this organization's objects (Membership.can_write)."""
    membership = membership_in(user, organization)
    return membership is not None and membership.can_write


def is_owner(user: Any, organization: Organization | int | None) -> bool:
    """Whether the user may do owner-only things in this organization (Membership.is_owner)."""
    return owns(membership_in(user, organization))


def owns(membership: Membership | None) -> bool:
    """Whether this membership (None: not a member) may do owner-only things: the owner rule
    for a page that already holds the membership (`require_role`, `membership_in`)."""
    return membership is not None and membership.is_owner


def require_owner_somewhere(user: Any, message: str) -> list[Organization]:
    """Return the organizations the user owns, by name (staff: all); 403 with `message` when
    the user owns none (pages that list every owned organization: members, payouts)."""
    organizations = list(owned_organizations(user).order_by("name"))
    if not organizations:
        raise PermissionDenied(message)
    return organizations


def owners_of(organization_id: int) -> QuerySet[Membership]:
    """The owners' memberships of one organization: Membership.is_owner as a query (an
    organization keeps at least one)."""
    return Membership.objects.filter(organization_id=organization_id, role=Membership.Role.OWNER)


def memberships_of(user: Any) -> list[Membership]:
    """The user's memberships (organization and role only); staff get one unsaved owner's
    membership, as in `membership_in`: they may do everything everywhere."""
    memberships = _memberships(user)
    if memberships is None:
        return [Membership(user=user, role=Membership.Role.OWNER)]
    return memberships


def require_role(
    user: Any, organization_id: int | None, *, edit: bool = False, owner: bool = False
) -> Membership:
    """Return the user's membership of the organization, or raise.

    Not a member: 404 (the object does not exist for them). Member without the right
    (edit: Membership.can_write; owner: Membership.is_owner): 403.
    """
    membership = membership_in(user, organization_id)
    if membership is None:
        raise Http404("Not found")
    if owner and not owns(membership):
        raise PermissionDenied("Only owners may do this.")
    if edit and not membership.can_write:
        raise PermissionDenied("Your role is read-only.")
    return membership


def owned_organization_ids(user: Any) -> list[int] | None:
    """Return the ids of organizations the user owns (Membership.is_owner); None for staff (all)."""
    memberships = _memberships(user)
    if memberships is None:
        return None
    return [m.organization_id for m in memberships if owns(m)]


def writable_organization_ids(user: Any) -> list[int] | None:
    """Return the ids of organizations the user may write in (Membership.can_write);
    None for staff (all)."""
    memberships = _memberships(user)
    if memberships is None:
        return None
    return [m.organization_id for m in memberships if m.can_write]


def readable_organization_ids(user: Any) -> list[int] | None:
    """Return the ids of the user's organizations (any role); None for staff (all)."""
    memberships = _memberships(user)
    if memberships is None:
        return None
    return [m.organization_id for m in memberships]


def writable_organizations(user: Any) -> QuerySet[Organization]:
    """Organizations where the user may change things (staff: all)."""
    return scope_queryset(Organization.objects.all(), writable_organization_ids(user))


def readable_organizations(user: Any) -> QuerySet[Organization]:
    """The user's organizations (staff: all)."""
    return scope_queryset(Organization.objects.all(), readable_organization_ids(user))


def owned_organizations(user: Any) -> QuerySet[Organization]:
    """Organizations the user owns (staff: all)."""
    return scope_queryset(Organization.objects.all(), owned_organization_ids(user))


def organization_paths(model: type[models.Model]) -> tuple[str, ...]:
    try:
        return ORGANIZATION_PATHS[model._meta.label_lower]
    except KeyError:
        raise UnscopedModel(
            f"{model._meta.label} has no organization path in backoffice.tenancy.ORGANIZATION_PATHS"
        ) from None


def scope_queryset(queryset: QuerySet, organization_ids: list[int] | None) -> QuerySet:
    """Filter `queryset` to rows of these organizations (None = no restriction)."""
    if organization_ids is None:
        return queryset
    condition = Q()
    # Every path follows forward foreign keys only, so the OR never duplicates a row.
    for path in organization_paths(queryset.model):
        condition |= Q(**{f"{path}__in": organization_ids})
    return queryset.filter(condition)


def writable(queryset: QuerySet, user: Any) -> QuerySet:
    """Return `queryset` restricted to objects of organizations the user may write in."""
    return scope_queryset(queryset, writable_organization_ids(user))


def owned(queryset: QuerySet, user: Any) -> QuerySet:
    """Return `queryset` restricted to objects of organizations the user owns."""
    return scope_queryset(queryset, owned_organization_ids(user))


def readable(queryset: QuerySet, user: Any) -> QuerySet:
    """Return `queryset` restricted to objects of the user's organizations."""
    return scope_queryset(queryset, readable_organization_ids(user))


def check_same_organization(
    organization_id: int | None, objects: Any, *, field: str, message: str
) -> None:
    """Raise a form ValidationError on `field` unless every object belongs to `organization_id`.

    Used where the user may write in several organizations (staff in the admin): the
    objects of one write must still all belong to one organization.
    """
    for obj in objects or ():
        owner = object_organization_id(obj)
        if owner != organization_id:
            raise forms.ValidationError({field: message})


def object_organization_id(obj: models.Model) -> int | None:
    """Return the organization id of a tenant-owned object (the first path that is set)."""
    for path in organization_paths(type(obj)):
        value: Any = obj
        for part in path.split("__"):
            value = getattr(value, part, None) if value is not None else None
        if isinstance(value, Organization):
            return value.pk
        if value is not None:
            return value
    return None


# -- DRF ---------------------------------------------------------------------------------------


MAX_LIST_ITEMS = 1000


class TenantSerializerMixin:
    """For ModelSerializers: every writable relation accepts only objects of organizations
    the requesting user may write in; `owner_fields` are set on create and never change.

    A foreign id fails with the relation's own "does not exist" error, exactly like an id
    that does not exist at all.
    """

    owner_fields: tuple[str, ...] = ()
    # Every list a request may send is bounded: each item of a relation costs a query, so a
    # 20,000-id list is refused at once (a field's own max_length, when smaller, wins).
    max_list_items = MAX_LIST_ITEMS

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()  # type: ignore[misc]
        request = self.context.get("request")  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        for field in fields.values():
            relation = field.child_relation if isinstance(field, ManyRelatedField) else field
            if (
                isinstance(relation, RelatedField)
                and not relation.read_only
                and relation.queryset is not None
            ):
                relation.queryset = writable(relation.queryset, user)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        self._bound_lists(data)
        attrs = super().to_internal_value(data)  # type: ignore[misc]
        instance = getattr(self, "instance", None)
        if instance is not None:
            for name in self.owner_fields:
                if name in attrs and attrs[name] != getattr(instance, name):
                    raise serializers.ValidationError(
                        {name: "This cannot change after creation; create a new one instead."}
                    )
        return attrs

    def _bound_lists(self, data: Any) -> None:
        if not hasattr(data, "get"):
            return  # not a mapping: the serializer says so itself
        fields = self.fields  # type: ignore[attr-defined]
        for name, field in fields.items():
            if field.read_only or not isinstance(field, (ManyRelatedField, serializers.ListField)):
                continue
            value = field.get_value(data)
            bound = min(self.max_list_items, getattr(field, "max_length", None) or MAX_LIST_ITEMS)
            if isinstance(value, (list, tuple)) and len(value) > bound:
                raise serializers.ValidationError({name: [f"At most {bound} items."]})


class StrictBooleanField(forms.NullBooleanField):
    """true/false (1/0) or absent. django-filter's field reads any other value as "no filter",
    so `?blocked=yes` answered every row as if the filter held."""

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # None: absent, as NullBooleanField
        if value in (None, ""):
            return None
        if value in (True, "true", "True", "1", 1):
            return True
        if value in (False, "false", "False", "0", 0):
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")


class TenantFilterBackend(drf_filters.DjangoFilterBackend):
    """django-filter backend whose model-choice filters offer only the user's organizations'
    objects, so filtering by a foreign id answers like filtering by an unknown one, and whose
    boolean filters refuse a value that is neither true nor false."""

    def get_filterset(self, request: Any, queryset: QuerySet, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        for flt in filterset.filters.values():
            if isinstance(flt, django_filters.BooleanFilter):
                # The filterset's own copies; REST's widget turned any other value into None.
                flt.field_class = StrictBooleanField
                flt.extra["widget"] = forms.TextInput
            if isinstance(
                flt, (drf_filters.ModelChoiceFilter, drf_filters.ModelMultipleChoiceFilter)
            ):
                choices = flt.get_queryset(request)
                if isinstance(choices, QuerySet):
                    flt.queryset = readable(choices, request.user)
        return filterset


class Conflict(APIException):
    status_code = 409
    default_detail = "This object is still in use."
    default_code = "conflict"


def protected_dependants(obj: models.Model) -> list[tuple[str, int]]:
    """Return [(plural name, count)] of rows that keep `obj` from being deleted (on_delete=PROTECT)."""
    found = []
    for relation in obj._meta.related_objects:
        if relation.many_to_many or relation.on_delete is not models.PROTECT:
            continue
        related = cast(type[models.Model], relation.related_model)
        count = related._base_manager.filter(**{relation.field.name: obj}).count()
        if count:
            meta = related._meta
            found.append(
                (str(meta.verbose_name if count == 1 else meta.verbose_name_plural), count)
            )
    return found


def delete_refusal(obj: models.Model, dependants: list[tuple[str, int]], hint: str = "") -> str:
    """Return e.g. "This charger has 12 charging sessions; mark it out of order instead."."""
    parts = [f"{count} {name}" for name, count in dependants] or ["records that depend on it"]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    text = f"This {obj._meta.verbose_name} has {listed}"
    return f"{text}; {hint}." if hint else f"{text}, so it cannot be deleted."


# -- portal forms --------------------------------------------------------------------------------


class TenantFormMixin:
    """For portal forms: pass `user=`; every model choice then offers (and accepts) only
    objects of organizations the user may write in. Subclasses may narrow further."""

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        for field in self.fields.values():  # type: ignore[attr-defined]
            if isinstance(field, forms.ModelChoiceField) and field.queryset is not None:
                field.queryset = writable(field.queryset, user)

    def restrict(self, name: str, queryset: QuerySet) -> None:
        """Narrow a model choice further (e.g. to one charger's organization), still writable only."""
        self.fields[name].queryset = writable(queryset, self.user)  # type: ignore[attr-defined]


def location_zones(user: Any, limit: int = 50) -> list[str]:
    """The time zones of the user's locations."""
    zones = readable(Property.objects.all(), user).order_by().values_list("timezone", flat=True)
    return sorted(zones.distinct()[:limit])


def viewer_zone_name(user: Any) -> str:
    """The zone a page spanning locations shows times in: the one zone all the user's locations
    share, else UTC (each time still names its zone)."""
    zones = location_zones(user, limit=2)
    return zones[0] if len(zones) == 1 else "UTC"
