"""The REST API under /api/v1/."""

from django.urls import include, path, re_path
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
from chargers.web.api import ChargerViewSet
from chargers.web.api_proxy import BackofficeDetailView, BackofficeListView
from fleet.baselines.api import BaselineViewSet
from fleet.campaigns.api import CampaignViewSet, ReleaseViewSet
from metering.api import (
    MeterKeyConfirmView,
    MeterKeyDetailView,
    MeterKeyListView,
    MeterKeyPortConfirmView,
    MeterKeyPortDetailView,
    MeterKeysReadFromChargerView,
)
from pki.api import PkiSettingsView, RootCertificateDetailView, RootCertificateListView
from power.api import PowerAllocationsView, PowerReadingView, PowerView
from reliability.api import (
    AlertRuleViewSet,
    AlertViewSet,
    CecCsvView,
    ExclusionViewSet,
    KpiView,
    NeviCsvView,
    UptimeView,
)
from roaming.api import (
    AccessPointDetailView,
    AccessPointListView,
    EmspIdentityView,
    PartnerViewSet,
    PropertyRoamingViewSet,
    TerminalPaymentViewSet,
    TerminalViewSet,
)
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
router.register("roaming/terminals", TerminalViewSet, basename="roaming-terminal")
router.register(
    "roaming/terminal-payments", TerminalPaymentViewSet, basename="roaming-terminal-payment"
)
router.register("units", UnitViewSet, basename="unit")
router.register("firmware/releases", ReleaseViewSet, basename="firmware-release")
router.register("firmware/campaigns", CampaignViewSet, basename="firmware-campaign")
router.register("config-baselines", BaselineViewSet, basename="config-baseline")
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
        "chargers/<str:station_id>/meter-keys/read-from-charger/",
        MeterKeysReadFromChargerView.as_view(),
        name="charger-meter-keys-read",
    ),
    # A meter whose OCMF names no serial: its key by connector (1.6) or EVSE (2.0.1).
    re_path(
        r"^chargers/(?P<station_id>[^/]+)/meter-keys/(?P<by>connector|evse)/(?P<port>[0-9]+)/confirm/$",
        MeterKeyPortConfirmView.as_view(),
        name="charger-meter-key-port-confirm",
    ),
    re_path(
        r"^chargers/(?P<station_id>[^/]+)/meter-keys/(?P<by>connector|evse)/(?P<port>[0-9]+)/$",
        MeterKeyPortDetailView.as_view(),
        name="charger-meter-key-port",
    ),
    # `path`: an OCMF meter serial may hold "/" (issue 47 item 6); the list URL also takes
    # DELETE ?meter_serial=, for a serial a client would rewrite as a path ("..", "//").
    path(
        "chargers/<str:station_id>/meter-keys/<path:meter_serial>/confirm/",
        MeterKeyConfirmView.as_view(),
        name="charger-meter-key-confirm",
    ),
    path(
        "chargers/<str:station_id>/meter-keys/<path:meter_serial>/",
        MeterKeyDetailView.as_view(),
        name="charger-meter-key",
    ),
    path(
        "organizations/<int:organization_id>/access-points/",
        AccessPointListView.as_view(),
        name="organization-access-points",
    ),
    path(
        "organizations/<int:organization_id>/access-points/<str:country>/",
        AccessPointDetailView.as_view(),
        name="organization-access-point",
    ),
    path(
        "organizations/<int:organization_id>/emsp-identity/",
        EmspIdentityView.as_view(),
        name="organization-emsp-identity",
    ),
    path(
        "organizations/<int:organization_id>/root-certificates/",
        RootCertificateListView.as_view(),
        name="organization-root-certificates",
    ),
    path(
        "organizations/<int:organization_id>/root-certificates/<int:pk>/",
        RootCertificateDetailView.as_view(),
        name="organization-root-certificate",
    ),
    path(
        "organizations/<int:organization_id>/pki-settings/",
        PkiSettingsView.as_view(),
        name="organization-pki-settings",
    ),
    path("uptime/", UptimeView.as_view(), name="uptime"),
    path("uptime/kpis/", KpiView.as_view(), name="uptime-kpis"),
    path("uptime/nevi.csv", NeviCsvView.as_view(), name="uptime-nevi"),
    path("uptime/cec.csv", CecCsvView.as_view(), name="uptime-cec"),
    path("", include(router.urls)),
]
