from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("contact/", views.contact, name="contact"),
    path("contact/sent/", views.contact_sent, name="contact-sent"),
    path("tickets/", views.host_tickets, name="ticket-list"),
    path("tickets/<str:reference>/", views.host_ticket, name="ticket-detail"),
]
