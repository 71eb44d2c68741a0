"""Portal URLs of Plug & Charge: an organization's roots and PKI provider."""

from django.urls import path

from . import views

app_name = "pki"

urlpatterns = [
    path("<int:organization_id>/", views.organization_pki, name="organization-pki"),
]
