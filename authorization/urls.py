"""Portal URLs for tokens, token groups, roaming search and mobility providers."""

from django.urls import path

from . import views

app_name = "authorization"

urlpatterns = [
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/", views.token_edit, name="token-edit"),
    path("tokens/groups/", views.token_group_list, name="token-group-list"),
    path("tokens/groups/<int:pk>/", views.token_group_detail, name="token-group-detail"),
    path(
        "tokens/groups/<int:pk>/remove/<int:token_pk>/",
        views.token_group_remove,
        name="token-group-remove",
    ),
    path("authorization/roaming/", views.roaming, name="roaming"),
    path("authorization/roaming/<int:pk>/valid/", views.roaming_valid, name="roaming-valid"),
    path("mobility-providers/", views.msp_list, name="msp-list"),
    path("mobility-providers/<int:pk>/block/", views.msp_block, name="msp-block"),
    path("mobility-providers/<int:pk>/validation/", views.msp_validation, name="msp-validation"),
]
