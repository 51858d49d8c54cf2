"""The messaging contract of payplane-core: the event envelope, and the topology against real
RabbitMQ (the test vhost, names of our own, deleted afterwards)."""

import json
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest
from payplane_core import messaging
from payplane_core.events import InvalidEvent, PaymentEvent

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/payplane_test"
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PAYMENT = {
    "id": "pay_1",
    "merchant_id": "mer_1",
    "amount": 1250,
    "currency": "EUR",
    "status": "pending",
    "provider": None,
    "description": "tea",
    "metadata": {"order": "42"},
    "created_at": "2026-11-26T12:00:00Z",
    "updated_at": "2026-11-26T12:00:00Z",
}


def test_the_producers_event_is_what_consumers_parse():
    event = PaymentEvent.of(PAYMENT, at=AT)
    assert (event.type, event.routing_key) == ("payment.pending", "payment.pending")
    payload = event.payload()
    assert payload["timestamp"] == "2026-11-26T12:00:00Z"
    assert payload["data"] == PAYMENT

    assert PaymentEvent.parse(json.dumps(payload)) == event


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"type": "payment.pending", "timestamp": "2026-11-26T12:00:00Z"}',
        b'{"type": "payment.pending", "timestamp": "x", "data": {}}',
    ],
)
def test_what_is_not_an_event_is_refused(body):
    with pytest.raises(InvalidEvent):
        PaymentEvent.parse(body)


@pytest.mark.parametrize(
    ("event_type", "change"),
    [
        ("payment.pending", {"amount": "1250"}),  # money is an integer, never text
        ("payment.pending", {"amount": 12.5}),
        ("payment.pending", {"amount": 0}),
        ("payment.pending", {"currency": "eur"}),
        ("payment.succeeded", {}),  # the type names the payment's status
        ("payment.lost", {"status": "lost"}),
    ],
)
def test_payment_fields_are_typed(event_type, change):
    event = {"type": event_type, "timestamp": "2026-11-26T12:00:00Z", "data": PAYMENT | change}
    with pytest.raises(InvalidEvent):
        PaymentEvent.parse(json.dumps(event))


@pytest.fixture
async def names():
    tag = uuid.uuid4().hex[:8]
    names = {
        "exchange": f"unit.{tag}.payments",
        "queue": f"unit.{tag}.consumer",
        "dead": f"unit.{tag}.consumer.dead-letter",
        "old": f"unit.{tag}.consumer-classic",
    }
    yield names
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        for queue in (names["queue"], names["dead"], names["old"]):
            await channel.queue_delete(queue)
        for exchange in (names["exchange"], names["dead"]):
            await channel.exchange_delete(exchange)


def _topology(names: dict, *, replaces: str | None = None) -> messaging.Topology:
    queue = messaging.ConsumerQueue(
        name=names["queue"],
        binding="payment.pending",
        dead_letter_exchange=names["dead"],
        dead_letter_queue=names["dead"],
        replaces=replaces,
    )
    return messaging.Topology(exchange=names["exchange"], queues=(queue,))


async def test_declarations_by_producer_and_consumer_agree(names):
    """The relay and the consumer declare the same queue, each on its own connection, again at
    every reconnection: no PRECONDITION_FAILED, and the queue is a quorum queue."""
    for _ in range(2):
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            _, queues = await messaging.declare(await connection.channel(), _topology(names))
    assert list(queues) == [names["queue"]]
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        classic = {"x-queue-type": "classic"}
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            # What any other set of arguments would get: the broker holds us to one contract.
            await channel.declare_queue(names["queue"], durable=True, arguments=classic)


async def test_a_replaced_classic_queue_is_drained_into_its_successor(names):
    """An existing broker from before: a classic queue with unconsumed events. Declaring the
    topology and retiring it moves every message to the quorum queue and deletes it."""
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            names["exchange"], aio_pika.ExchangeType.TOPIC, durable=True
        )
        old = await channel.declare_queue(names["old"], durable=True)
        await old.bind(exchange, routing_key="payment.pending")
        for n in range(3):
            await exchange.publish(
                aio_pika.Message(b"{}", message_id=f"evt_{n}"), routing_key="payment.pending"
            )
        topology = _topology(names, replaces=names["old"])
        _, queues = await messaging.declare(await connection.channel(), topology)
        assert await messaging.retire_replaced(connection, topology) == 3
        assert await messaging.retire_replaced(connection, topology) == 0  # idempotent
        moved = []
        while (message := await queues[names["queue"]].get(no_ack=True, fail=False)) is not None:
            moved.append(message.message_id)
        assert moved == ["evt_0", "evt_1", "evt_2"]
        probe = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await probe.declare_queue(names["old"], passive=True)
