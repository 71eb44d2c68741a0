"""REST API for rates, session costs, payouts and refunds."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from backoffice.api import TenantViewSetMixin, as_drf_error
from backoffice.models import Membership, Property
from backoffice.tenancy import TenantFilterBackend, TenantSerializerMixin, role_in
from chargers.models import Charger
from chargers.web.api import SessionSerializer, SessionViewSet

from . import services
from .gateways import GatewayError
from .models import Payment, Payout, Rate
from .money import round_money
from .selectors import payments_for, payout_breakdown, payouts_for, rates_for

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

    class Meta:
        model = Rate
        fields = [
            "id",
            "property",
            "charger",
            "currency",
            "valid_from",
            "valid_until",
            "connection_fee",
            "connection_fee_for_zero_energy",
            "energy_price_per_kwh",
            "time_price_per_hour",
            "idle_fee_per_minute",
            "idle_grace_minutes",
            "idle_fee_cap",
            "tax_percent",
            "processing_fee_percent",
            "processing_fee_fixed",
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
            serializer.instance = services.rate_save(rate=rate, **serializer.validated_data)
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
    subtotal = serializers.CharField()
    tax = serializers.CharField()
    total = serializers.CharField()


class BillingSessionSerializer(SessionSerializer):
    """The chargers' session plus its cost (computed from the charger's own facts)."""

    cost = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "cost"]

    @extend_schema_field(CostSerializer)
    def get_cost(self, obj) -> dict:
        return services.session_cost(obj).as_dict()


class BillingSessionViewSet(SessionViewSet):
    serializer_class = BillingSessionSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("charger__property")


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
        if not self.request.user.is_staff:
            owned = Membership.objects.filter(
                user=self.request.user, role=Membership.Role.OWNER
            ).values("organization_id")
            queryset = queryset.filter(organization_id__in=owned)
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
    """Guest payments of the organizations you own; refund them with POST /payments/<id>/refund/."""

    serializer_class = PaymentSerializer
    filterset_fields = ["organization", "status", "session"]
    filter_backends = [TenantFilterBackend]

    def get_queryset(self):
        # Payments carry guests' emails: owners only, like payouts.
        queryset = payments_for(self.request.user)
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        if not self.request.user.is_staff:
            owned = Membership.objects.filter(
                user=self.request.user, role=Membership.Role.OWNER
            ).values("organization_id")
            queryset = queryset.filter(organization_id__in=owned)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=RefundRequestSerializer, responses={201: {"type": "object"}})
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        payment = self.get_object()
        if role_in(request.user, payment.organization_id) != Membership.Role.OWNER:
            raise PermissionDenied("Only owners refund payments.")
        data = dict(request.data)
        data["payment"] = payment.pk
        serializer = RefundRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                refund = services.refund_issue(
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
