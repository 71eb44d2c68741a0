"""REST API for rates, session costs, payouts and refunds."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models.manager import BaseManager
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from backoffice.api import TenantViewSetMixin, as_drf_error
from backoffice.models import Property
from backoffice.tenancy import (
    TenantFilterBackend,
    TenantSerializerMixin,
    is_owner,
    owned,
)
from chargers.models import Charger
from chargers.web.api import SessionListSerializer, SessionSerializer, SessionViewSet

from . import pricing
from .gateways import GatewayError
from .models import RATE_PRICE_FIELDS, Payment, Payout, PriceShown, Rate, SessionCharge
from .money import round_money
from .price_shown import price_version
from .selectors import payments_for, payout_breakdown, payouts_for, rates_for
from .services import rates, refunds
from .session_costs import needs_pricing, sessions_cost

MONEY_FIELD = {"max_digits": 14, "decimal_places": 4, "coerce_to_string": True}


class RateSerializer(TenantSerializerMixin, serializers.ModelSerializer):
    property = serializers.PrimaryKeyRelatedField(queryset=Property.objects.all())
    charger = serializers.SlugRelatedField(
        slug_field="station_id",
        queryset=Charger.objects.all(),
        allow_null=True,
        required=False,
        help_text="Station ID of the charger this rate overrides; null = the whole property.",
    )
    currency = serializers.CharField(source="property.currency", read_only=True)
    connection_fee = serializers.DecimalField(**MONEY_FIELD, min_value=0, required=False)
    energy_price_per_kwh = serializers.DecimalField(**MONEY_FIELD, min_value=0)
    time_price_per_hour = serializers.DecimalField(**MONEY_FIELD, min_value=0, required=False)
    idle_fee_per_minute = serializers.DecimalField(**MONEY_FIELD, min_value=0, required=False)
    idle_fee_cap = serializers.DecimalField(
        **MONEY_FIELD, min_value=0, required=False, allow_null=True
    )
    tax_percent = serializers.DecimalField(
        max_digits=6, decimal_places=3, min_value=0, max_value=100, required=False
    )
    processing_fee_percent = serializers.DecimalField(
        max_digits=6, decimal_places=3, min_value=0, max_value=100, required=False
    )
    processing_fee_fixed = serializers.DecimalField(**MONEY_FIELD, min_value=0, required=False)
    prices_include_tax = serializers.BooleanField(
        required=False,
        help_text="true: the prices include tax_percent (taken out of them); false: it is added "
        "on top. Omitted on a new price: the location's latest price's mode (true for a new "
        "location). Applies to sessions that start once this price is in force.",
    )

    class Meta:
        model = Rate
        fields = [
            "id",
            "property",
            "charger",
            "currency",
            "valid_from",
            "valid_until",
            *RATE_PRICE_FIELDS,
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        prop = attrs.get("property") or getattr(self.instance, "property", None)
        charger = (
            attrs["charger"] if "charger" in attrs else getattr(self.instance, "charger", None)
        )
        if charger is not None and prop is not None and charger.property_id != prop.pk:
            raise ValidationError({"charger": "The charger belongs to another property."})
        start = attrs.get("valid_from") or getattr(self.instance, "valid_from", None)
        end = (
            attrs["valid_until"]
            if "valid_until" in attrs
            else getattr(self.instance, "valid_until", None)
        )
        if start and end and end <= start:
            raise ValidationError({"valid_until": "Must be after valid_from."})
        return attrs


class RateViewSet(
    TenantViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Rates of a property, optionally overridden per charger, with validity dates."""

    serializer_class = RateSerializer
    filterset_fields = ["property", "charger"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return rates_for(self.request.user).order_by("property_id", "-valid_from", "pk")

    def organization_id_of(self, obj):
        return obj.property.organization_id

    def _save(self, serializer, rate):
        try:
            serializer.instance = rates.rate_save(rate=rate, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None

    def perform_create(self, serializer):
        self.require_edit(serializer.validated_data["property"].organization_id)
        self._save(serializer, Rate())

    def perform_update(self, serializer):
        if "property" in serializer.validated_data:
            self.require_edit(serializer.validated_data["property"].organization_id)
        self._save(serializer, serializer.instance)


class CostLineSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["connection_fee", "energy", "charging_time", "idle_fee", "subscription_discount"]
    )
    description = serializers.CharField()
    quantity = serializers.CharField()
    unit = serializers.CharField()
    unit_price = serializers.CharField()
    amount = serializers.CharField()


class CostSerializer(serializers.Serializer):
    currency = serializers.CharField()
    lines = CostLineSerializer(many=True)
    subtotal = serializers.CharField(help_text="Excluding tax.")
    tax = serializers.CharField()
    total = serializers.CharField(help_text="Including tax: subtotal + tax.")
    tax_percent = serializers.CharField()
    prices_include_tax = serializers.BooleanField(
        help_text="The rate's prices (the lines) included the tax, or it was added on top."
    )


class PriceVersionSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=PriceShown.Source.choices,
        help_text="guest / driver: the price the charger's page showed before the start; start: "
        "nobody was shown one, the price in force when the start reached us (our clock).",
    )
    shown_at = serializers.DateTimeField(
        help_text="When it was shown (or the start reached us), our clock."
    )
    rate = serializers.IntegerField(
        allow_null=True, help_text="The rate it was copied from; null once that rate is deleted."
    )
    rate_valid_from = serializers.DateTimeField(help_text="Since when that price applied.")


class BillingSessionListSerializer(SessionListSerializer):
    """A page of sessions: the ones without a final stored charge (still charging, or not priced
    yet) priced together (billing.session_costs: a constant number of queries per page, the
    receipt's pricing function), not one by one."""

    def to_representation(self, data: Any) -> list:
        sessions = list(data.all() if isinstance(data, BaseManager) else data)
        child = self.child
        assert isinstance(child, BillingSessionSerializer)
        child.costs = sessions_cost([s for s in sessions if needs_pricing(s)])
        try:
            return super().to_representation(sessions)
        finally:
            child.costs = None


class BillingSessionSerializer(SessionSerializer):
    """The chargers' session plus its cost (computed from the charger's own facts) and the price
    version it is billed with (docs/billing.md, "Which price a session is billed with")."""

    # Set by BillingSessionListSerializer for a page: the batch-priced costs by session pk.
    costs: dict[int, pricing.Cost] | None = None
    cost = serializers.SerializerMethodField()
    price_version = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "cost", "price_version"]
        list_serializer_class = BillingSessionListSerializer

    @extend_schema_field(CostSerializer)
    def get_cost(self, obj) -> dict:
        # A finished session's price is stored when it is settled (services.session_price, the
        # same Cost): read with the row, so a page of sessions costs no query per session (issue
        # 51 item 8). A session still charging, or not priced yet, is priced now.
        try:
            charge = obj.charge
        except SessionCharge.DoesNotExist:
            charge = None
        if charge is not None and charge.final and obj.stopped_at is not None:
            return stored_cost(charge)
        if self.costs is not None and obj.pk in self.costs:
            return self.costs[obj.pk].as_dict()
        return sessions_cost([obj])[obj.pk].as_dict()

    @extend_schema_field(PriceVersionSerializer(allow_null=True))
    def get_price_version(self, obj) -> dict | None:
        version = price_version(obj)
        if version is None:  # a session from before versions were stored
            return None
        return PriceVersionSerializer(
            {
                "source": version.source,
                "shown_at": version.shown_at,
                "rate": version.rate_id,
                "rate_valid_from": version.rate_valid_from,
            }
        ).data


def stored_cost(charge: SessionCharge) -> dict:
    """The stored price in Cost.as_dict's shape (amounts in the currency's own decimals)."""
    currency = charge.currency
    return {
        "currency": currency,
        "lines": charge.lines,
        "subtotal": str(round_money(charge.subtotal, currency)),
        "tax": str(round_money(charge.tax, currency)),
        "total": str(round_money(charge.total, currency)),
        "tax_percent": f"{Decimal(charge.tax_percent).normalize():f}",
        "prices_include_tax": charge.prices_include_tax,
    }


class BillingSessionViewSet(SessionViewSet):
    serializer_class = BillingSessionSerializer

    def get_queryset(self):
        # The price version and the stored charge in the same query: a page of sessions costs no
        # query per row for either (issue 51 item 8, issue 56 item 5).
        # The stored charge's lines are this API's cost lines: not deferred here.
        return (
            super()
            .get_queryset()
            .select_related("charger__property", "price_shown__rate", "charge")
            .defer(None)
            .defer("terminal_payment__token_data")
        )


class CurrencyAmountsMixin:
    """Show money as decimal strings in the currency's minor unit ("7.50", "368")."""

    amount_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in self.amount_fields:
            if data.get(name) is not None:
                data[name] = str(round_money(Decimal(data[name]), instance.currency))
        return data


class PayoutSerializer(CurrencyAmountsMixin, serializers.ModelSerializer):
    amount_fields = ("gross", "processing_fees", "platform_fees", "refunds", "carried_over", "net")

    class Meta:
        model = Payout
        fields = [
            "id",
            "reference",
            "organization",
            "currency",
            "period_start",
            "period_end",
            "gross",
            "processing_fees",
            "platform_fees",
            "refunds",
            "carried_over",
            "net",
            "status",
            "failure_reason",
            "paid_at",
        ]


class PayoutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Payouts of the organizations you own, with their breakdown down to sessions."""

    serializer_class = PayoutSerializer
    filterset_fields = ["organization", "status", "currency"]
    filter_backends = [TenantFilterBackend]

    def get_queryset(self):
        queryset = payouts_for(self.request.user)
        if getattr(self, "swagger_fake_view", False):
            return Payout.objects.none()
        queryset = owned(queryset, self.request.user)
        return queryset.order_by("-period_end", "-id")

    @extend_schema(responses={200: {"type": "object"}})
    @action(detail=True, methods=["get"])
    def breakdown(self, request, pk=None):
        payout = self.get_object()
        data = payout_breakdown(payout)
        return Response(
            {
                "payout": PayoutSerializer(payout).data,
                "sessions": [
                    {
                        "session_id": row["session"].pk,
                        "transaction_id": row["session"].transaction_id,
                        "station_id": row["session"].charger.station_id,
                        "started_at": row["session"].started_at,
                        **{
                            key: str(round_money(row[key], payout.currency))
                            for key in ("gross", "processing_fee", "platform_fee", "refunds", "net")
                        },
                    }
                    for row in data["sessions"]
                ],
                "other": [
                    {
                        "kind": item.kind,
                        "amount": str(round_money(item.amount, payout.currency)),
                        "memo": item.memo,
                    }
                    for item in data["other"]
                ],
            }
        )


class RefundRequestSerializer(serializers.Serializer):
    payment = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=0)
    reason = serializers.CharField(max_length=300)
    idempotency_key = serializers.CharField(max_length=100, required=False)


class PaymentSerializer(CurrencyAmountsMixin, serializers.ModelSerializer):
    amount_fields = ("amount_held", "amount_captured", "amount_refunded", "refundable")
    session = serializers.PrimaryKeyRelatedField(read_only=True)
    refundable = serializers.DecimalField(max_digits=14, decimal_places=4, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "organization",
            "session",
            "email",
            "currency",
            "amount_held",
            "amount_captured",
            "amount_refunded",
            "refundable",
            "status",
            "reference",
            "created_at",
            "settled_at",
        ]


class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Card payments (guests and drivers with an account) of the organizations you own; refund
    them with POST /payments/<id>/refund/."""

    serializer_class = PaymentSerializer
    filterset_fields = ["organization", "status", "session"]
    filter_backends = [TenantFilterBackend]

    def get_queryset(self):
        # Payments carry guests' emails: owners only, like payouts.
        queryset = payments_for(self.request.user)
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        queryset = owned(queryset, self.request.user)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=RefundRequestSerializer, responses={201: {"type": "object"}})
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        payment = self.get_object()
        if not is_owner(request.user, payment.organization_id):
            raise PermissionDenied("Only owners refund payments.")
        data = dict(request.data)
        data["payment"] = payment.pk
        serializer = RefundRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        try:
            refund = refunds.refund_issue(
                payment=payment,
                amount=serializer.validated_data["amount"],
                reason=serializer.validated_data["reason"],
                source="support" if request.user.is_staff else "host",
                user=request.user,
                idempotency_key=serializer.validated_data.get("idempotency_key")
                or f"api:{uuid.uuid4()}",
            )
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None
        except refunds.RefundUnanswered as exc:
            # Made or not is not known yet: the same idempotency key may be sent again.
            return Response({"detail": str(exc)}, status=status.HTTP_504_GATEWAY_TIMEOUT)
        except GatewayError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(
            {
                "id": refund.pk,
                "amount": str(refund.amount),
                "reason": refund.reason,
                "payment": PaymentSerializer(Payment.objects.get(pk=payment.pk)).data,
            },
            status=status.HTTP_201_CREATED,
        )
