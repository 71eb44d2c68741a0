"""Guest routes under /s/: the QR target /s/<station_id>, the entry form /s/ and the flow."""

from django.urls import path

from .views import pages, stay

app_name = "guest"

urlpatterns = [
    path("", pages.entry, name="entry"),
    path("help/location-access/", pages.location_access_help, name="location-access"),
    path("session/<str:key>/", pages.session, name="session"),
    path("pay/<str:key>/", pages.pay, name="pay"),
    path("pay/<str:key>/return/", pages.pay_return, name="pay-return"),
    path("session/<str:key>/stop/", pages.stop, name="stop"),
    path("receipt/<str:key>/", pages.receipt, name="receipt"),
    path("receipt/<str:key>/pdf/", pages.receipt_pdf, name="receipt-pdf"),
    path("labels/charger/<str:station_id>/", pages.label_charger, name="label-charger"),
    path("labels/property/<int:property_id>/", pages.label_sheet, name="label-sheet"),
    path("stay/<str:code>/", stay.stay_link, name="stay-link"),
    path("<str:station_id>/stay/", stay.stay_code_start, name="stay-start"),
    path("<str:station_id>/start/", pages.start, name="start"),
    path("<str:station_id>/ports/", pages.ports, name="ports"),
    # The QR code encodes /s/<station_id> (no slash); both forms land here.
    path("<str:station_id>", pages.landing, name="landing"),
    path("<str:station_id>/", pages.landing),
]
