from django.urls import path

from .views import pages, payments, plans

app_name = "billing"

urlpatterns = [
    path("prices/", pages.price_overview, name="price-overview"),
    path("properties/<int:property_id>/rates/", pages.rate_list, name="rate-list"),
    path("properties/<int:property_id>/plans/", plans.plan_list, name="plan-list"),
    path("plans/<int:plan_id>/stop/", plans.plan_stop, name="plan-stop"),
    path("rates/<int:rate_id>/edit/", pages.rate_edit, name="rate-edit"),
    path("payouts/", pages.payout_list, name="payout-list"),
    path("payouts/<int:payout_id>/", pages.payout_detail, name="payout-detail"),
    path("payments/<int:payment_id>/refund/", pages.payment_refund, name="payment-refund"),
    path("statements/", pages.statement_create, name="statement-create"),
    path("statements/<int:job_id>/progress/", pages.statement_progress, name="statement-progress"),
    path("statements/<int:job_id>/download/", pages.statement_download, name="statement-download"),
    path("reconciliations/", pages.reconciliation_upload, name="reconciliation-upload"),
    path(
        "reconciliations/<int:reconciliation_id>/",
        pages.reconciliation_detail,
        name="reconciliation-detail",
    ),
    path("sessions/<int:session_id>/cost/", pages.session_cost_detail, name="session-cost"),
    path("webhooks/stripe/", payments.stripe_webhook, name="stripe-webhook"),
    path(
        "sandbox/v1/payment_intents/<str:intent_id>/confirm",
        payments.sandbox_confirm,
        name="sandbox-confirm",
    ),
    path(
        "sandbox/v1/setup_intents/<str:setup_id>/confirm",
        payments.sandbox_setup_confirm,
        name="sandbox-setup-confirm",
    ),
    path("sandbox/3ds/<str:intent_id>/", payments.sandbox_3ds, name="sandbox-3ds"),
    path(
        "sandbox/onboarding/<str:account>/",
        payments.sandbox_onboarding,
        name="sandbox-onboarding",
    ),
    path("seller/<int:organization_id>/", pages.seller_details, name="seller-details"),
    path("reports/<int:organization_id>/", pages.report_schedule, name="report-schedule"),
    path(
        "payout-account/<int:organization_id>/",
        payments.payout_account_start,
        name="payout-account",
    ),
    path(
        "payout-account/<int:organization_id>/return/",
        payments.payout_account_return,
        name="payout-account-return",
    ),
    path("subscriptions/<str:manage_key>/", pages.subscription_manage, name="subscription-manage"),
]
