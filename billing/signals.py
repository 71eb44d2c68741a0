"""Signals billing sends about payments, so higher apps (guest) react without billing importing them."""

from django.dispatch import Signal

# A hold was confirmed by the processor (webhook payment_intent.amount_capturable_updated).
# Sent on commit with reference=<PaymentIntent id>.
hold_authorized = Signal()
