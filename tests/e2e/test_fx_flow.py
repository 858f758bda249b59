"""The currency flow end to end, on real components (see conftest.py): a
loopback server serves an NBK rates file, `tulpar poll --once` reads it, a
Celery worker delivers to an aiosmtpd server and a webhook receiver."""
import json
import time
from datetime import date, timedelta

import pytest

from e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

NBK = """<?xml version="1.0" encoding="utf-8"?>
<rates>
  <generator>Alternate RSS Builder</generator>
  <title>Official exchange rates of National Bank of Republic Kazakhstan</title>
  <link>www.nationalbank.kz</link>
  <description>Official exchange rates of National Bank of Republic Kazakhstan</description>
  <copyright>www.nationalbank.kz</copyright>
  <date>{date}</date>
  <item><fullname>ДОЛЛАР США</fullname><title>USD</title><description>{usd}</description>
        <quant>1</quant><index></index><change>0.00</change></item>
  <item><fullname>ЕВРО</fullname><title>EUR</title><description>601.44</description>
        <quant>1</quant><index></index><change>0.00</change></item>
</rates>
"""


CONFIG = """
allow_private_targets: true
sources:
  - name: nbk
    kind: nbk
    url: {base}/rates/get_rates.xml
    interval: {interval}
subscriptions:
  - name: tenge-weakens
    fx: {{pair: KZT/USD, change_pct: 1.0, direction: down}}
    channels: [mailto:fx-desk@example.com, {hooks}/hooks/fx]
"""


@pytest.fixture
def fx_service(service, file_server, webhook_sink):
    """The harness's service, configured with an NBK rate source and one FX
    rule; `configure(interval)` rewrites the config (before the worker starts)."""
    def configure(interval: str = "1h") -> None:
        service.config.write_text(CONFIG.format(base=file_server.url, interval=interval,
                                                hooks=webhook_sink.url))

    configure()
    service.configure = configure
    (file_server.root / "rates").mkdir()
    start = date.today() - timedelta(days=10)

    def publish(n: int, usd: str) -> None:
        path = file_server.root / "rates" / "get_rates.xml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(NBK.format(date=(start + timedelta(days=n)).strftime("%d.%m.%Y"), usd=usd),
                       encoding="utf-8")
        tmp.rename(path)

    service.publish = publish
    return service


def poll(svc) -> str:
    result = svc.poll_once()
    assert result.returncode == 0, result.stderr
    return result.stdout


def settled(svc, mail_sink, webhook_sink, alerts: int) -> None:
    """Wait until every delivery is sent and exactly `alerts` of each arrived."""
    wait_until(lambda: len(mail_sink.messages()) >= alerts and len(webhook_sink.delivered()) >= alerts
               and all(d.status == "sent" for d in svc.store.deliveries()),
               what=f"{alerts} emails and webhooks", log=svc.log)
    assert len(mail_sink.messages()) == alerts and len(webhook_sink.delivered()) == alerts


def test_rate_move_alerts_once_then_not_until_it_comes_back_and_moves_again(fx_service, mail_sink,
                                                                            webhook_sink):
    svc = fx_service
    svc.start_worker()
    svc.publish(0, "500.00")
    assert "nbk: 2 rates, 2 new, 0 fx alerts, 0 deliveries queued" in poll(svc)

    svc.publish(1, "510.00")  # USD/KZT +2%: the tenge weakens 1.96%
    assert "1 fx alerts, 2 deliveries queued" in poll(svc)
    settled(svc, mail_sink, webhook_sink, 1)
    [mail] = mail_sink.messages()
    assert mail["To"] == "fx-desk@example.com"
    assert "KZT/USD" in mail["Subject"] and "-1.96%" in mail["Subject"]
    [image] = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert image.get_content_disposition() == "inline"
    html = mail.get_body(("html",)).get_content()
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    text = mail.get_body(("plain",)).get_content()
    assert "0.002" in text and "0.0019608" in text and "nbk" in text
    [hook] = webhook_sink.delivered()
    body = json.loads(hook["body"])
    assert (body["type"], body["pair"], body["from"], body["subscription"]) == (
        "tulpar.fx_alert", "KZT/USD", "0.002", "tenge-weakens")

    # The same file again, then the rate staying moved, then coming back: no alert.
    assert "0 new" in poll(svc)
    for n, usd in ((2, "510.00"), (3, "500.00")):
        svc.publish(n, usd)
        assert "0 fx alerts" in poll(svc)
    settled(svc, mail_sink, webhook_sink, 1)

    svc.publish(4, "510.00")  # moves again: one more alert
    assert "1 fx alerts, 2 deliveries queued" in poll(svc)
    settled(svc, mail_sink, webhook_sink, 2)
    assert len(svc.store.deliveries()) == 4


def test_the_worker_polls_rate_sources_on_its_own(fx_service, mail_sink, webhook_sink):
    """Beat schedules the rate source like a feed; the poll task hands it to
    the currency pipeline. Polled every second, a move still alerts once."""
    svc = fx_service
    svc.configure(interval="1s")
    svc.publish(0, "500.00")
    svc.start_worker()
    wait_until(lambda: (state := svc.store.source_state("nbk")) and state.last_ok_at,
               what="the first rate poll", log=svc.log)
    svc.publish(1, "510.00")
    settled(svc, mail_sink, webhook_sink, 1)
    time.sleep(4)  # several more polls of the same file
    settled(svc, mail_sink, webhook_sink, 1)
    assert "tulpar.fx_alert" in webhook_sink.delivered()[0]["body"]
