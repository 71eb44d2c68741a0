"""DRF permissions: members read; owners and managers write; staff everything."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .selectors import role_in


class OrganizationRolePermission(BasePermission):
    """Object-level: viewers may only read. Objects expose `permission_organization_id`."""

    def has_object_permission(self, request, view, obj) -> bool:
        organization_id = view.organization_id_of(obj)
        role = role_in(request.user, organization_id)
        if role is None:
            return False
        return request.method in SAFE_METHODS or role in ("owner", "manager")
