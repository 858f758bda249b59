"""The news flow end to end, on real components (see conftest.py)."""
import json
import time
from datetime import timedelta

import pytest

from services.local.mail_sink import MailSink
from services.settings import Settings
from e2e.conftest import RETRY_SCHEDULE, wait_until, write_feed

pytestmark = pytest.mark.e2e

CPC = {"guid": "cpc-1", "title": "CPC halts loadings after mooring damage",
       "summary": "The &lt;b&gt;Caspian&lt;/b&gt; Pipeline Consortium stopped loadings at SPM-2."}
OTHER = {"guid": "it-1", "title": "Bishkek opens an IT park", "summary": "Start-ups get tax breaks."}


def test_new_item_gives_one_email_and_one_webhook_then_none(service, mail_sink, webhook_sink):
    write_feed(service.feed, [CPC, OTHER])
    service.start_worker()
    first = service.poll_once()
    assert first.returncode == 0, first.stderr
    assert "2 new, 1 matches, 2 deliveries queued" in first.stdout

    wait_until(lambda: mail_sink.messages() and webhook_sink.delivered(), what="email and webhook",
               log=service.log)
    [mail] = mail_sink.messages()
    assert mail["To"] == "desk@example.com"
    assert "CPC halts loadings" in mail["Subject"]
    html = mail.get_body(("html",)).get_content()
    assert "<mark>" in html  # the matched terms are highlighted
    assert "Caspian" in html and "<b>" not in html  # feed HTML became plain text
    assert mail.get_body(("plain",)).get_content().strip()
    [hook] = webhook_sink.delivered()
    body = json.loads(hook["body"])
    assert json.dumps(body)  # plain JSON
    assert "cpc-1" in json.dumps(body) and "cpc-disruption" in json.dumps(body)

    again = service.poll_once()
    assert again.returncode == 0, again.stderr
    assert "0 new" in again.stdout
    # Nothing more arrives: every delivery is sent, none is pending.
    wait_until(lambda: all(d.status == "sent" for d in service.store.deliveries()), what="all sent")
    assert len(mail_sink.messages()) == 1 and len(webhook_sink.delivered()) == 1
    assert len(service.store.deliveries()) == 2


def test_webhook_503_twice_then_200_arrives_on_third_try(service, webhook_sink, mail_sink):
    webhook_sink.statuses = [503, 503]
    write_feed(service.feed, [CPC])
    service.start_worker()
    assert service.poll_once().returncode == 0
    wait_until(webhook_sink.delivered, what="webhook after retries", log=service.log)
    assert [r["status"] for r in webhook_sink.requests] == [503, 503, 200]
    [hook] = [d for d in service.store.deliveries() if d.channel.startswith("http")]
    wait_until(lambda: service.store.delivery(hook.id).status == "sent", what="status sent")
    outcomes = [a.outcome for a in service.store.attempts(hook.id)]
    assert outcomes == ["retry", "retry", "sent"]


def test_receiver_down_longer_than_the_old_schedule_lasted_still_gets_the_alert(service, webhook_sink,
                                                                                 mail_sink):
    # The old schedule doubled from its first delay and gave up after 8
    # attempts (~4 min from 2 s). From this harness's first delay that is:
    first = Settings(retry_schedule=RETRY_SCHEDULE).retry_delays[0]
    old_horizon = first * (2 ** 7 - 1)
    webhook_sink.stop()  # the receiver is down: connections are refused
    write_feed(service.feed, [CPC])
    service.start_worker()
    assert service.poll_once().returncode == 0
    [hook] = [d for d in service.store.deliveries() if d.channel.startswith("http")]
    wait_until(lambda: service.store.attempts(hook.id), what="a first failed attempt", log=service.log)
    time.sleep(old_horizon + 2)  # still down well past where the old schedule gave up
    webhook_sink.start()
    wait_until(webhook_sink.delivered, timeout=40, what="webhook once the receiver is back", log=service.log)
    wait_until(lambda: service.store.delivery(hook.id).status == "sent", what="status sent")
    attempts = service.store.attempts(hook.id)
    assert [a.outcome for a in attempts][-1] == "sent"
    assert {a.outcome for a in attempts[:-1]} == {"retry"} and len(attempts) >= 4
    assert attempts[-1].at - attempts[0].at > timedelta(seconds=old_horizon)
    assert len(webhook_sink.delivered()) == 1


def test_smtp_down_at_first_then_mail_arrives(service, mail_sink, webhook_sink, tmp_path):
    port = mail_sink.port
    mail_sink.stop()  # the SMTP server is down when the alert is first sent
    write_feed(service.feed, [CPC])
    service.start_worker()
    assert service.poll_once().returncode == 0
    [email] = [d for d in service.store.deliveries() if d.channel.startswith("mailto")]
    wait_until(lambda: service.store.delivery(email.id).attempts >= 1
               and service.store.delivery(email.id).status == "retrying",
               what="a failed first attempt", log=service.log)
    with MailSink(tmp_path / "late-mail", port=port) as late:
        wait_until(late.messages, timeout=40, what="mail after the server came up", log=service.log)
        assert "CPC halts loadings" in late.messages()[0]["Subject"]


def test_worker_killed_mid_delivery_alert_still_arrives(service, webhook_sink, mail_sink):
    # The first webhook request hangs, then fails: the worker is SIGKILLed
    # while waiting for it. After a restart the delivery must still succeed.
    webhook_sink.statuses, webhook_sink.delays = [503], [6]
    write_feed(service.feed, [CPC])
    service.start_worker()
    assert service.poll_once().returncode == 0
    wait_until(lambda: webhook_sink.started >= 1, what="delivery in flight", log=service.log)
    service.kill_worker()
    service.start_worker()
    wait_until(webhook_sink.delivered, timeout=60, what="webhook after restart", log=service.log)
    assert len(webhook_sink.delivered()) >= 1  # at least once, never zero


def test_redis_restart_between_poll_and_delivery_loses_nothing(service, redis_server, webhook_sink, mail_sink):
    # No worker yet: the poll leaves its delivery ids on Redis only.
    write_feed(service.feed, [CPC])
    assert service.poll_once().returncode == 0
    redis_server.restart()
    service.start_worker()
    wait_until(lambda: webhook_sink.delivered() and mail_sink.messages(), timeout=60,
               what="alerts after a Redis restart", log=service.log)
    wait_until(lambda: all(d.status == "sent" for d in service.store.deliveries()), what="all sent")


def test_a_source_added_to_the_config_is_polled_without_a_restart(service, file_server, webhook_sink,
                                                                  mail_sink):
    write_feed(file_server.root / "late.xml", [CPC])
    service.start_worker()
    # Beat is up and scheduling (the 0.5 s sweep) before the config changes.
    wait_until(lambda: "Sending due task sweep-outbox" in service.log(), what="beat running", log=service.log)
    service.config.write_text(service.config.read_text().replace(
        "sources:\n", f"sources:\n  - name: late\n    url: {file_server.url}/late.xml\n    interval: 1s\n", 1))
    wait_until(webhook_sink.delivered, what="an alert from the added source", log=service.log)
    [hook] = webhook_sink.delivered()
    assert "cpc-1" in hook["body"]
    assert service.store.source_state("late").last_ok_at
    assert service.store.source_state("wire") is None  # its 1 h interval has not come yet
