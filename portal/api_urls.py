"""The REST API under /api/v1/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from authorization.api import (
    AuthorizationDecisionViewSet,
    MspViewSet,
    TokenGroupViewSet,
    TokenViewSet,
)
from backoffice.api import AuthTokenView, OrganizationViewSet
from billing.api import BillingSessionViewSet, PaymentViewSet, PayoutViewSet, RateViewSet
from chargers.proxy.api import BackofficeDetailView, BackofficeListView
from chargers.web.api import ChargerViewSet
from metering.api import MeterKeyDetailView, MeterKeyListView
from power.api import PowerAllocationsView, PowerReadingView, PowerView
from reliability.api import (
    AlertRuleViewSet,
    AlertViewSet,
    CecCsvView,
    ExclusionViewSet,
    NeviCsvView,
    UptimeView,
)
from roaming.api import PartnerViewSet, PropertyRoamingViewSet
from stays.api import CalendarFeedViewSet, PropertyCalendarsView, ReservationViewSet, UnitViewSet
from support.api import AssistantView

router = DefaultRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("properties", PropertyRoamingViewSet, basename="property")
router.register("chargers", ChargerViewSet, basename="charger")
router.register("sessions", BillingSessionViewSet, basename="session")
router.register("rates", RateViewSet, basename="rate")
router.register("payouts", PayoutViewSet, basename="payout")
router.register("payments", PaymentViewSet, basename="payment")
router.register("tokens", TokenViewSet, basename="token")
router.register("token-groups", TokenGroupViewSet, basename="token-group")
router.register("msps", MspViewSet, basename="msp")
router.register("authorizations", AuthorizationDecisionViewSet, basename="authorization")
# The issues call them decisions: the same list, under the name the portal uses.
router.register("decisions", AuthorizationDecisionViewSet, basename="decision")
router.register("roaming/partners", PartnerViewSet, basename="roaming-partner")
router.register("units", UnitViewSet, basename="unit")
router.register("reservations", ReservationViewSet, basename="reservation")
router.register("calendars", CalendarFeedViewSet, basename="calendar")
router.register("exclusions", ExclusionViewSet, basename="exclusion")
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="api-token"),
    path("support/assistant/", AssistantView.as_view(), name="support-assistant"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "properties/<int:property_id>/calendars/",
        PropertyCalendarsView.as_view(),
        name="property-calendars",
    ),
    path("properties/<int:property_id>/power/", PowerView.as_view(), name="property-power"),
    path(
        "properties/<int:property_id>/power/reading/",
        PowerReadingView.as_view(),
        name="property-power-reading",
    ),
    path(
        "properties/<int:property_id>/power/allocations/",
        PowerAllocationsView.as_view(),
        name="property-power-allocations",
    ),
    path(
        "chargers/<str:station_id>/backoffices/",
        BackofficeListView.as_view(),
        name="charger-backoffices",
    ),
    path(
        "chargers/<str:station_id>/backoffices/<int:pk>/",
        BackofficeDetailView.as_view(),
        name="charger-backoffice",
    ),
    path(
        "chargers/<str:station_id>/meter-keys/",
        MeterKeyListView.as_view(),
        name="charger-meter-keys",
    ),
    path(
        "chargers/<str:station_id>/meter-keys/<str:meter_serial>/",
        MeterKeyDetailView.as_view(),
        name="charger-meter-key",
    ),
    path("uptime/", UptimeView.as_view(), name="uptime"),
    path("uptime/nevi.csv", NeviCsvView.as_view(), name="uptime-nevi"),
    path("uptime/cec.csv", CecCsvView.as_view(), name="uptime-cec"),
    path("", include(router.urls)),
]
