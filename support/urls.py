from django.urls import path

from . import inbound_views, license_views, views

app_name = "support"

urlpatterns = [
    path("contact/", views.contact, name="contact"),
    path("contact/sent/", views.contact_sent, name="contact-sent"),
    path("tickets/", views.host_tickets, name="ticket-list"),
    path("tickets/<str:reference>/", views.host_ticket, name="ticket-detail"),
    path("licenses/<str:station_id>/", license_views.charger_license, name="charger-license"),
    # Customers' email replies (docs/support.md, "Replies by email"): 404 unless configured.
    path("inbound/mime/", inbound_views.inbound_mime, name="inbound-mime"),
    path("inbound/mailgun/", inbound_views.inbound_mailgun, name="inbound-mailgun"),
]
