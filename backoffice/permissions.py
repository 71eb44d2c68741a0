"""The API's write permission: members read, writers (Membership.can_write) write, staff everything."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .tenancy import can_write


class OrganizationWritePermission(BasePermission):
    """Object-level: a write needs Membership.can_write in the object's organization.

    The view says which organization an object belongs to (`organization_id_of`); reads
    are already limited to the user's organizations by the view's queryset.
    """

    message = "Your role in this organization is read-only."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_write(request.user, view.organization_id_of(obj))
