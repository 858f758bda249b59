"""What a worker would see on the queues: for tests that check what was enqueued."""
from __future__ import annotations

import kombu


def taken(broker: str, queue: str) -> list[kombu.Message]:
    """Every message on `queue`, taken off it as a worker's consumer takes them."""
    out = []
    with kombu.Connection(broker) as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            out.append(message)
    return out
