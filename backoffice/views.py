"""Portal pages: the dashboard and the portal shell."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from chargers.selectors import chargers_for


@login_required
def dashboard(request):
    chargers = list(chargers_for(request.user))
    online = sum(1 for c in chargers if c.is_online())
    return render(
        request,
        "backoffice/dashboard.html",
        {"chargers": chargers, "online": online, "offline": len(chargers) - online},
    )
