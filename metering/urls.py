from django.urls import path

from . import views

app_name = "metering"

urlpatterns = [
    path(
        "signed/<str:token>/transparency.xml",
        views.transparency_download,
        name="transparency",
    ),
]
