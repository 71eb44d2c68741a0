"""Signals billing sends about payments, so higher apps (guest) react without billing importing them."""

from django.dispatch import Signal

# A hold was confirmed by the processor (webhook payment_intent.amount_capturable_updated).
# Sent on commit with reference=<PaymentIntent id>.
hold_authorized = Signal()

# A finished session's settlement is held: its signed meter readings do not verify and the
# host's policy is to hold (docs/metering.md). Sent on commit with session_id=..., reason=...;
# support opens a ticket for the agents (support.receivers).
settlement_held = Signal()

# A refund was booked (billing.services.refunds): at once when the processor answered, or later
# by refunds_unanswered_settle when its answer had been lost. Sent once per refund, on commit,
# with refund_id=... and idempotency_key=...; support confirms a ticket's refund to the customer
# and on the ticket (support.receivers), whoever booked it.
refund_booked = Signal()
