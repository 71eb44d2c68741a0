"""Template context for every portal page: site name and what the signed-in user may do."""

from django.conf import settings

from .models import Membership


def portal(request) -> dict:
    context = {"SITE_NAME": getattr(settings, "SITE_NAME", "EV Backoffice")}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if user.is_staff:
            roles = {Membership.Role.OWNER}
        else:
            roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
        context["portal_is_owner"] = Membership.Role.OWNER in roles
        context["portal_can_edit"] = bool(roles & {Membership.Role.OWNER, Membership.Role.MANAGER})
        match = getattr(request, "resolver_match", None)
        context["portal_section"] = _section(match.url_name if match else "")
    return context


def _section(url_name: str | None) -> str:
    name = url_name or ""
    for prefix, section in (
        ("charger", "chargers"),
        ("session", "sessions"),
        ("location", "locations"),
        ("token", "tokens"),
        ("roaming", "roaming"),
        ("msp", "msps"),
        ("decision", "chargers"),
        ("dashboard", "dashboard"),
        ("member", "members"),
    ):
        if name.startswith(prefix):
            return section
    return ""
