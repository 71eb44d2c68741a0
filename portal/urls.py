from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from backoffice.login_throttle import ThrottledPasswordResetView
from backoffice.views import FaviconView
from support.admin import find_view

# What Django refuses before any view (a body too large) answers the API and OCPI in their form.
handler400 = "backoffice.middleware.bad_request_page"
# A database that did not answer (or rolled the request back) is a 503 with Retry-After.
handler500 = "backoffice.unavailable.server_error_page"

urlpatterns = [
    # The support home's search (before admin's own URLs, which would take "find/" as an app).
    path("admin/find/", admin.site.admin_view(find_view), name="admin-find"),
    path("admin/", admin.site.urls),
    path("favicon.ico", FaviconView.as_view()),
    path("api/v1/", include("portal.api_urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("s/", include("guest.urls")),
    path("driver/account/", include("allauth.account.urls")),
    path("driver/", include("drivers.urls")),
    path("support/", include("support.urls")),
    path("billing/", include("billing.urls")),
    path("ocpi/", include("roaming.urls")),
    path("roaming/", include("roaming.portal_urls")),
    path("stays/", include("stays.urls")),
    path("metering/", include("metering.urls")),
    path("pki/", include("pki.urls")),
    path("fleet/", include("fleet.urls")),
    path("", include("backoffice.urls")),
    path("", include("reliability.urls")),
    path("", include("metering.portal_urls")),
    path("", include("power.urls")),
    path("", include("chargers.web.urls")),
    path("", include("authorization.urls")),
]
