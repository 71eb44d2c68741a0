from django.urls import path

from .views import inbound, licenses, pages

app_name = "support"

urlpatterns = [
    path("contact/", pages.contact, name="contact"),
    path("contact/sent/", pages.contact_sent, name="contact-sent"),
    path("tickets/", pages.host_tickets, name="ticket-list"),
    path("tickets/<str:reference>/", pages.host_ticket, name="ticket-detail"),
    path("licenses/<str:station_id>/", licenses.charger_license, name="charger-license"),
    # Customers' email replies (docs/support.md, "Replies by email"): 404 unless configured.
    path("inbound/mime/", inbound.inbound_mime, name="inbound-mime"),
    path("inbound/mailgun/", inbound.inbound_mailgun, name="inbound-mailgun"),
]
