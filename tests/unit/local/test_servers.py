"""The loopback stand-ins the demo and the e2e tests rely on."""
import json
import smtplib
from email.message import EmailMessage

import httpx
import redis


def test_redis_server_answers(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.set("tulpar:probe", "1")
    assert client.get("tulpar:probe") == b"1"


def test_mail_sink_writes_eml(mail_sink):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "Тенге"
    msg.set_content("body")
    with smtplib.SMTP(mail_sink.host, mail_sink.port) as smtp:
        smtp.send_message(msg)
    [received] = mail_sink.messages()
    assert received["Subject"] == "Тенге"


def test_webhook_sink_scripts_statuses_and_saves_only_accepted(webhook_sink):
    webhook_sink.statuses = [503]
    codes = [httpx.post(webhook_sink.url + "/hook", json={"n": i}).status_code for i in range(2)]
    assert codes == [503, 200]
    files = sorted(webhook_sink.directory.glob("*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["payload"] == {"n": 1}


def test_file_server_conditional_get(file_server):
    (file_server.root / "feed.xml").write_text("<rss/>")
    first = httpx.get(file_server.url + "/feed.xml")
    again = httpx.get(file_server.url + "/feed.xml", headers={"If-None-Match": first.headers["ETag"]})
    assert (first.status_code, again.status_code) == (200, 304)
    assert httpx.get(file_server.url + "/../etc/passwd").status_code == 404
