"""Portal URLs of firmware campaigns (mounted at /fleet/)."""

from django.urls import path

from . import views

app_name = "fleet"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/<slug:action>/", views.campaign_action, name="campaign-action"),
]
