from django.urls import path

from . import roaming_views, views

app_name = "drivers"

urlpatterns = [
    path("", views.home, name="home"),
    path("business/", views.business_details, name="business"),
    path("cards/", views.cards, name="cards"),
    path("cards/add/", views.card_add, name="card-add"),
    path("cards/return/", views.card_return, name="card-return"),
    path("cards/<int:card_id>/default/", views.card_default, name="card-default"),
    path("cards/<int:card_id>/remove/", views.card_remove, name="card-remove"),
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("plans/<int:plan_id>/subscribe/", views.subscribe, name="subscribe"),
    path(
        "subscriptions/<int:subscription_id>/cancel/",
        views.subscription_cancel,
        name="subscription-cancel",
    ),
    path("start/<str:station_id>/", views.start, name="start"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/claim/", views.sessions_claim, name="sessions-claim"),
    path("sessions/<int:session_id>/receipt/", views.session_receipt, name="session-receipt"),
    path("delete/", views.account_delete, name="account-delete"),
    # Partner networks (our eMSP role, docs/ocpi.md "Driver accounts roaming").
    path("networks/", roaming_views.networks, name="networks"),
    path("networks/activity/", roaming_views.network_activity, name="network-activity"),
    path("networks/<int:pk>/", roaming_views.network_location_page, name="network-location"),
    path("networks/<int:pk>/start/", roaming_views.network_start, name="network-start"),
    path(
        "networks/sessions/<int:session_pk>/stop/",
        roaming_views.network_stop,
        name="network-stop",
    ),
]
