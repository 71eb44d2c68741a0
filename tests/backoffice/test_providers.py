"""Named providers (backoffice.providers): one function per question, registered at app ready."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from backoffice import views as dashboard
from backoffice.providers import Provider
from billing import receivers as billing_receivers
from chargers.web import security_views as views_security
from chargers.web import views as charger_views
from chargers.web.providers import session_price
from drivers import receivers as driver_receivers
from guest.views.pages import saved_card_offer
from roaming import access_points
from support import receivers as support_receivers


def test_every_provider_is_registered_by_its_app_at_start():
    assert dashboard.charger_figures.call is charger_views.dashboard_charger_figures
    assert dashboard.security_figures.call is views_security.dashboard_security_figures
    assert dashboard.support_figures.call is support_receivers.dashboard_support_figures
    assert dashboard.revenue.call is billing_receivers.dashboard_revenue
    assert session_price.call is billing_receivers.session_price_so_far
    assert saved_card_offer.call is driver_receivers.saved_card_offer
    assert dashboard.roaming_figures.call is access_points.dashboard_figures


def test_an_unregistered_provider_says_so_and_a_second_provider_is_refused():
    asked = Provider("test question")
    with pytest.raises(ImproperlyConfigured, match="Nothing provides test question"):
        asked.call()

    def first() -> int:
        return 1

    def second() -> int:
        return 2

    asked.register(first)
    asked.register(first)  # the same function again (a second ready()) is fine
    assert asked.call() == 1
    with pytest.raises(ImproperlyConfigured, match="already provided by"):
        asked.register(second)
