"""Portal pages for roaming (OCPI partners, a location's OCPI data), mounted at /roaming/."""

from django.urls import path

from .views import portal

app_name = "partners"

urlpatterns = [
    path("partners/", portal.partner_list, name="msp-ocpi-partner-list"),
    path("partners/<int:pk>/", portal.partner_detail, name="msp-ocpi-partner"),
    path(
        "partners/<int:pk>/unregister/",
        portal.partner_unregister,
        name="msp-ocpi-partner-unregister",
    ),
    path(
        "partners/<int:pk>/version-update/",
        portal.partner_version_update,
        name="msp-ocpi-partner-version-update",
    ),
    path("terminals/<int:pk>/assign/", portal.terminal_assign, name="terminal-assign"),
    path(
        "terminals/<int:pk>/deactivate/",
        portal.terminal_deactivate,
        name="terminal-deactivate",
    ),
    path(
        "partners/<int:pk>/terminals/activate/",
        portal.terminal_activate,
        name="terminal-activate",
    ),
    path("access-points/", portal.access_points, name="access-points"),
    path("locations/<int:pk>/", portal.location_ocpi, name="location-ocpi"),
    path("locations/<int:pk>/parking/", portal.location_parking, name="location-parking"),
    # The invoice a payment terminal shows the driver: invoice_base_url + authorization_reference
    # (OCPI 2.3.0 mod_payments, InvoiceCreator CPO). Public: the terminal's key is the secret.
    path("invoices/<str:key>/", portal.terminal_invoice_base, name="terminal-invoice-base"),
    path(
        "invoices/<str:key>/<str:reference>",
        portal.terminal_invoice,
        name="terminal-invoice",
    ),
]
