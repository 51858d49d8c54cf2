"""How a payment is shown: to the merchant, to internal callers and inside its events."""

from payplane_core.strictjson import compact

from payments.models import Payment
from payments.schemas import PaymentOut


def payment_json(payment: Payment) -> dict:
    return PaymentOut(
        id=payment.id,
        merchant_id=payment.merchant_id,
        amount=payment.amount,
        currency=payment.currency,
        status=payment.status,
        provider=payment.provider,
        description=payment.description,
        metadata=payment.metadata_,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    ).model_dump(mode="json")


def payment_body(payment: Payment) -> str:
    """The response body exactly as sent and as stored for an Idempotency-Key replay."""
    return compact(payment_json(payment))
