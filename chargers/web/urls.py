"""Portal URLs for chargers, locations and sessions (mounted at the site root)."""

from django.urls import path

from chargers.web import device_views as views_v201
from chargers.web import network as views_network
from chargers.web import proxy_views, views
from chargers.web import security_views as views_security

app_name = "chargers"

urlpatterns = [
    path("chargers/", views.charger_list, name="charger-list"),
    path("chargers/<str:station_id>/", views.charger_detail, name="charger-detail"),
    path("chargers/<str:station_id>/commands/", views.charger_command, name="charger-command"),
    path("chargers/<str:station_id>/settings/", views.charger_settings, name="charger-settings"),
    path("chargers/<str:station_id>/logs/", views.charger_logs, name="charger-logs"),
    path(
        "chargers/<str:station_id>/logs/whitelist/",
        views.charger_whitelist,
        name="charger-whitelist",
    ),
    path("chargers/<str:station_id>/proxy/", proxy_views.charger_proxy, name="charger-proxy"),
    path(
        "chargers/<str:station_id>/proxy/state/",
        proxy_views.charger_proxy_state,
        name="charger-proxy-state",
    ),
    path(
        "chargers/<str:station_id>/proxy/add/",
        proxy_views.charger_proxy_edit,
        name="charger-proxy-add",
    ),
    path(
        "chargers/<str:station_id>/proxy/<int:pk>/",
        proxy_views.charger_proxy_edit,
        name="charger-proxy-edit",
    ),
    path(
        "chargers/<str:station_id>/proxy/<int:pk>/remove/",
        proxy_views.charger_proxy_delete,
        name="charger-proxy-delete",
    ),
    path(
        "chargers/<str:station_id>/proxy/leader/",
        proxy_views.charger_proxy_leader,
        name="charger-proxy-leader",
    ),
    path(
        "chargers/<str:station_id>/proxy/timeout/",
        proxy_views.charger_proxy_timeout,
        name="charger-proxy-timeout",
    ),
    path("chargers/<str:station_id>/sessions/", views.charger_sessions, name="charger-sessions"),
    path(
        "chargers/<str:station_id>/authorizations/",
        views.charger_authorizations,
        name="charger-authorizations",
    ),
    path(
        "chargers/<str:station_id>/security/",
        views_security.charger_security,
        name="charger-security",
    ),
    path(
        "chargers/<str:station_id>/security/action/",
        views_security.charger_security_action,
        name="charger-security-action",
    ),
    path(
        "chargers/<str:station_id>/security/profile/",
        views_security.charger_security_profile,
        name="charger-security-profile",
    ),
    path(
        "chargers/<str:station_id>/security/rotate-password/",
        views_security.charger_rotate_password,
        name="charger-rotate-password",
    ),
    path(
        "chargers/<str:station_id>/reservations/",
        views_v201.charger_reservations,
        name="charger-reservations",
    ),
    path(
        "chargers/<str:station_id>/reservations/new/",
        views_v201.charger_reserve,
        name="charger-reserve",
    ),
    path(
        "chargers/<str:station_id>/reservations/<int:pk>/cancel/",
        views_v201.charger_reservation_cancel,
        name="charger-reservation-cancel",
    ),
    path(
        "chargers/<str:station_id>/device-model/",
        views_v201.charger_device_model,
        name="charger-device-model",
    ),
    path(
        "chargers/<str:station_id>/device-model/set/",
        views_v201.charger_set_variable,
        name="charger-set-variable",
    ),
    path(
        "chargers/<str:station_id>/smart-charging/",
        views_v201.charger_smart_charging,
        name="charger-smart-charging",
    ),
    path(
        "chargers/<str:station_id>/smart-charging/action/",
        views_v201.charger_smart_charging_action,
        name="charger-smart-charging-action",
    ),
    path("authorizations/<int:pk>/", views.decision_detail, name="decision-detail"),
    path("locations/", views.location_list, name="location-list"),
    path("network/", views_network.network_list, name="network-list"),
    path(
        "network/properties/<int:pk>/units/",
        views_network.network_unit_add,
        name="network-unit-add",
    ),
    path("network/<str:station_id>/move/", views_network.network_move, name="network-move"),
    path("locations/<int:pk>/", views.location_detail, name="location-detail"),
    path("locations/<int:pk>/chargers/add/", views.charger_add, name="charger-add"),
    path(
        "locations/<int:pk>/reimbursement/",
        views.location_reimbursement_add,
        name="location-reimbursement",
    ),
    path(
        "locations/<int:pk>/reimbursement/<int:token_pk>/remove/",
        views.location_reimbursement_remove,
        name="location-reimbursement-remove",
    ),
    path(
        "chargers/<str:station_id>/setup-card/", views.charger_setup_card, name="charger-setup-card"
    ),
    path("sessions/", views.session_list, name="session-list"),
    path("sessions/export.csv", views.session_export, name="session-export"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/meter/", views.session_meter, name="session-meter"),
]
