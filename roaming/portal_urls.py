"""Portal pages for roaming (OCPI partners, a location's OCPI data), mounted at /roaming/."""

from django.urls import path

from . import portal_views

app_name = "partners"

urlpatterns = [
    path("partners/", portal_views.partner_list, name="msp-ocpi-partner-list"),
    path("partners/<int:pk>/", portal_views.partner_detail, name="msp-ocpi-partner"),
    path(
        "partners/<int:pk>/unregister/",
        portal_views.partner_unregister,
        name="msp-ocpi-partner-unregister",
    ),
    path("locations/<int:pk>/", portal_views.location_ocpi, name="location-ocpi"),
]
