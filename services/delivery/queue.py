"""Put tasks on the Celery queues without importing the workers package
(services/ must run without it): tasks are addressed by name."""
from __future__ import annotations

from celery import Celery

DELIVER_TASK = "tulpar.deliver"
DELIVER_QUEUE = "deliver"  # the queues workers/app.py declares and routes to
POLL_TASK = "tulpar.poll_source"
POLL_QUEUE = "poll"


class Queue:
    def __init__(self, broker_url: str):
        self.app = Celery("tulpar-client", broker=broker_url, set_as_current=False)
        self.app.conf.broker_connection_retry_on_startup = True

    def deliver(self, ids: list[int]) -> None:
        for delivery_id in ids:
            # Only the id crosses the queue; the payload waits in the database.
            self.app.send_task(DELIVER_TASK, args=[int(delivery_id)], queue=DELIVER_QUEUE)

    def poll(self, source_names: list[str]) -> None:
        for name in source_names:
            self.app.send_task(POLL_TASK, args=[name], queue=POLL_QUEUE)

    def close(self) -> None:
        self.app.close()
