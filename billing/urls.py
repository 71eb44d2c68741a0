from django.urls import path

from . import payment_views, views

app_name = "billing"

urlpatterns = [
    path("prices/", views.price_overview, name="price-overview"),
    path("properties/<int:property_id>/rates/", views.rate_list, name="rate-list"),
    path("rates/<int:rate_id>/edit/", views.rate_edit, name="rate-edit"),
    path("payouts/", views.payout_list, name="payout-list"),
    path("payouts/<int:payout_id>/", views.payout_detail, name="payout-detail"),
    path("payments/<int:payment_id>/refund/", views.payment_refund, name="payment-refund"),
    path("statements/", views.statement_create, name="statement-create"),
    path("statements/<int:job_id>/progress/", views.statement_progress, name="statement-progress"),
    path("statements/<int:job_id>/download/", views.statement_download, name="statement-download"),
    path("reconciliations/", views.reconciliation_upload, name="reconciliation-upload"),
    path(
        "reconciliations/<int:reconciliation_id>/",
        views.reconciliation_detail,
        name="reconciliation-detail",
    ),
    path("sessions/<int:session_id>/cost/", views.session_cost_detail, name="session-cost"),
    path("webhooks/stripe/", payment_views.stripe_webhook, name="stripe-webhook"),
    path(
        "sandbox/v1/payment_intents/<str:intent_id>/confirm",
        payment_views.sandbox_confirm,
        name="sandbox-confirm",
    ),
    path(
        "sandbox/v1/setup_intents/<str:setup_id>/confirm",
        payment_views.sandbox_setup_confirm,
        name="sandbox-setup-confirm",
    ),
    path("sandbox/3ds/<str:intent_id>/", payment_views.sandbox_3ds, name="sandbox-3ds"),
    path(
        "sandbox/onboarding/<str:account>/",
        payment_views.sandbox_onboarding,
        name="sandbox-onboarding",
    ),
    path("seller/<int:organization_id>/", views.seller_details, name="seller-details"),
    path("reports/<int:organization_id>/", views.report_schedule, name="report-schedule"),
    path(
        "payout-account/<int:organization_id>/",
        payment_views.payout_account_start,
        name="payout-account",
    ),
    path(
        "payout-account/<int:organization_id>/return/",
        payment_views.payout_account_return,
        name="payout-account-return",
    ),
    path("subscriptions/<str:manage_key>/", views.subscription_manage, name="subscription-manage"),
]
