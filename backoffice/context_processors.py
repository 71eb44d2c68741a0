"""Template context for every portal page: site name and what the signed-in user may do."""

from django.conf import settings

from .tenancy import memberships_of, owns


def portal(request) -> dict:
    context = {"SITE_NAME": getattr(settings, "SITE_NAME", "EV Backoffice")}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        memberships = memberships_of(user)
        context["portal_is_owner"] = any(owns(m) for m in memberships)
        context["portal_can_edit"] = any(m.can_write for m in memberships)
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
        ("rate", "prices"),
        ("price", "prices"),
        ("payout", "payouts"),
        ("network", "network"),
        ("integration", "integrations"),
    ):
        if name.startswith(prefix):
            return section
    return ""
