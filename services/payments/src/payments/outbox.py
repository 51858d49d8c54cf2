"""The outbox event announcing a payment change (written by the statement making it)."""

from datetime import datetime

from payplane_core.events import PaymentEvent
from payplane_core.ids import new_id

from payments.models import OutboxEvent, Payment
from payments.views import payment_json


def event_for(payment: Payment, *, at: datetime, headers: dict[str, str]) -> OutboxEvent:
    """The event announcing the payment's current status, in the shared envelope
    (``payplane_core.events``); its body is exactly what the merchant's webhook will carry."""
    event = PaymentEvent.of(payment_json(payment), at=at)
    return OutboxEvent(
        id=new_id("evt"),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        event_type=event.type,
        routing_key=event.routing_key,
        payload=event.payload(),
        headers=headers,
        state="pending",
        attempts=0,
        next_retry_at=at,
        created_at=at,
    )
