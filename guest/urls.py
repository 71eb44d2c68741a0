"""Guest routes under /s/: the QR target /s/<station_id>, the entry form /s/ and the flow."""

from django.urls import path

from . import stay_views, views

app_name = "guest"

urlpatterns = [
    path("", views.entry, name="entry"),
    path("help/location-access/", views.location_access_help, name="location-access"),
    path("session/<str:key>/", views.session, name="session"),
    path("pay/<str:key>/", views.pay, name="pay"),
    path("pay/<str:key>/return/", views.pay_return, name="pay-return"),
    path("session/<str:key>/stop/", views.stop, name="stop"),
    path("receipt/<str:key>/", views.receipt, name="receipt"),
    path("receipt/<str:key>/pdf/", views.receipt_pdf, name="receipt-pdf"),
    path("labels/charger/<str:station_id>/", views.label_charger, name="label-charger"),
    path("labels/property/<int:property_id>/", views.label_sheet, name="label-sheet"),
    path("stay/<str:code>/", stay_views.stay_link, name="stay-link"),
    path("<str:station_id>/stay/", stay_views.stay_code_start, name="stay-start"),
    path("<str:station_id>/start/", views.start, name="start"),
    path("<str:station_id>/ports/", views.ports, name="ports"),
    # The QR code encodes /s/<station_id> (no slash); both forms land here.
    path("<str:station_id>", views.landing, name="landing"),
    path("<str:station_id>/", views.landing),
]
