"""`tulpar fx fetch --source NAME URL`: CSV out, exit codes, local/file:// and http (loopback)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli import fx_fetch
from services.local.ports import free_port

DATA = Path(__file__).resolve().parents[2] / "data" / "rates"

EXPECTED = {
    ("nbk", "nbk/get_rates_2026-11-20.xml"): """at,pair,rate
2026-11-20,AUD/KZT,338.07
2026-11-20,USD/KZT,518.2
2026-11-20,EUR/KZT,601.44
2026-11-20,IRR/KZT,0.0123
2026-11-20,CNY/KZT,72.91
2026-11-20,KGS/KZT,5.93
2026-11-20,RUB/KZT,6.41
2026-11-20,TJS/KZT,48.65
2026-11-20,UZS/KZT,0.0393
2026-11-20,KRW/KZT,0.3562
""",
    ("nbk-rss", "nbk_rss/rates_all.xml"): """at,pair,rate
2026-11-20,AUD/KZT,338.07
2026-11-20,USD/KZT,518.2
2026-11-20,EUR/KZT,601.44
2026-11-20,KGS/KZT,5.93
2026-11-20,RUB/KZT,6.41
2026-11-20,TJS/KZT,48.65
2026-11-20,UZS/KZT,0.0393
""",
    ("nbkr", "nbkr/daily_2026-11-20.xml"): """at,pair,rate
2026-11-20,USD/KGS,87.45
2026-11-20,EUR/KGS,101.3017
2026-11-20,CNY/KGS,12.2841
2026-11-20,KZT/KGS,0.1688
2026-11-20,RUB/KGS,1.0874
""",
    ("cbu", "cbu/stale_and_repeat.json"): """at,pair,rate
2026-11-20,USD/UZS,12045.18
2026-11-20,EUR/UZS,13957.01
2026-11-20,RUB/UZS,148.93
""",
    ("nbt", "nbt/export_dotted_date_comma.xml"): """at,pair,rate
2026-11-20,USD/TJS,10.652
2026-11-20,EUR/TJS,12.3307
2026-11-20,RUB/TJS,0.132
""",
    ("cbr", "cbr/XML_daily_2023-09-27_no_vunit.xml"): """at,pair,rate
2023-09-27,USD/RUB,80.4221
2023-09-27,KZT/RUB,0.155198
2023-09-27,UZS/RUB,0.0066768
""",
    ("ecb", "ecb/eurofxref-hist-90d.xml"): """at,pair,rate
2026-11-20,EUR/USD,1.1252
2026-11-20,EUR/JPY,163.87
2026-11-20,EUR/CZK,24.981
2026-11-20,EUR/GBP,0.8432
2026-11-20,EUR/HUF,401.15
2026-11-20,EUR/CNY,8.1235
2026-11-20,EUR/TRY,47.301
2026-11-20,EUR/KRW,1581.5
""",
}
CASES = sorted(EXPECTED)


@pytest.fixture(autouse=True)
def guards_on(monkeypatch):
    """The pollers' guards for loopback and local sources stay on: `tulpar fx
    fetch` is the operator's own command and reads what they name all the same."""
    monkeypatch.setenv("TULPAR_ALLOW_PRIVATE_TARGETS", "false")
    monkeypatch.setenv("TULPAR_ALLOW_FILE_SOURCES", "false")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = fx_fetch.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("source, path", CASES)
def test_local_path(capsys, source, path):
    assert run(capsys, "--source", source, str(DATA / path)) == (0, EXPECTED[source, path], "")


@pytest.mark.parametrize("source, path", CASES)
def test_file_url(capsys, source, path):
    assert run(capsys, "--source", source, (DATA / path).as_uri()) == (0, EXPECTED[source, path], "")


@pytest.mark.parametrize("source, path", CASES)
def test_http_loopback(capsys, file_server, source, path):
    target = file_server.root / Path(path).name
    shutil.copy(DATA / path, target)
    code, out, err = run(capsys, "--source", source, f"{file_server.url}/{target.name}")
    assert (code, out, err) == (0, EXPECTED[source, path], "")


@pytest.mark.parametrize(
    "source, path, message",
    [
        ("nbk", "nbk/bad_number.xml", "tulpar fx fetch: nbk: item 2 (USD) <description> '5l8.2' is not a number"),
        ("cbr", "cbr/bad_no_charcode.xml", "tulpar fx fetch: cbr: <Valute> 2 ID=R01060 <CharCode> is missing"),
        ("ecb", "nbk/get_rates_2026-11-20.xml", "tulpar fx fetch: ecb: root element is <rates>"),  # wrong --source
        ("cbu", "cbu/bad_json.json", "tulpar fx fetch: cbu: not JSON"),
    ],
)
def test_malformed_file_exits_2_naming_source(capsys, source, path, message):
    code, out, err = run(capsys, "--source", source, str(DATA / path))
    assert code == 2 and out == ""
    assert err.startswith(message)


def test_fetch_failures_exit_1(capsys, file_server, tmp_path):
    code, out, err = run(capsys, "--source", "nbk", str(tmp_path / "nope.xml"))
    assert code == 1 and out == "" and "tulpar fx fetch: nbk: cannot fetch" in err
    code, out, err = run(capsys, "--source", "nbk", f"{file_server.url}/missing.xml")
    assert code == 1 and "HTTP 404" in err
    closed = free_port("127.0.0.1")
    code, out, err = run(capsys, "--source", "cbr", f"http://127.0.0.1:{closed}/XML_daily.asp")
    assert code == 1 and "tulpar fx fetch: cbr: cannot fetch" in err
    code, out, err = run(capsys, "--source", "cbr", "ftp://example.org/x.xml")
    assert code == 1 and "unsupported URL scheme" in err


@pytest.mark.parametrize("max_bytes, code", [("1000", 1), ("2000000", 0)])
def test_the_pollers_size_limit_applies(capsys, monkeypatch, file_server, max_bytes, code):
    # The same fetcher as the pollers, so the same TULPAR_MAX_FEED_BYTES.
    monkeypatch.setenv("TULPAR_MAX_FEED_BYTES", max_bytes)
    shutil.copy(DATA / "nbk/get_rates_2026-11-20.xml", file_server.root / "rates.xml")
    url = f"{file_server.url}/rates.xml"
    got, out, err = run(capsys, "--source", "nbk", url)
    assert got == code
    if code:
        assert (out, err) == ("", f"tulpar fx fetch: nbk: cannot fetch {url}: larger than 1000 bytes\n")
    else:
        assert (out, err) == (EXPECTED["nbk", "nbk/get_rates_2026-11-20.xml"], "")


def test_unknown_source_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        fx_fetch.main(["--source", "xyz", str(DATA / "nbk/get_rates_2026-11-20.xml")])
    assert exit_.value.code == 2


def test_register_adds_fetch_to_fx_subparsers():
    import argparse

    parser = argparse.ArgumentParser(prog="tulpar fx")
    sub = parser.add_subparsers(dest="fx_command", required=True)
    fx_fetch.register(sub)
    args = parser.parse_args(["fetch", "--source", "nbk-rss", "x.xml"])
    assert (args.source, args.url, args.handler.__name__) == ("nbk-rss", "x.xml", "_handler")


# Kept last: the real command line.
@pytest.mark.parametrize("source, path", [c for c in CASES if c[0] in ("nbk-rss", "cbr", "ecb")])
def test_tulpar_fx_fetch_subprocess(source, path):
    done = subprocess.run([sys.executable, "-m", "services", "fx", "fetch", "--source", source, str(DATA / path)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, EXPECTED[source, path], "")


def test_tulpar_fx_fetch_subprocess_malformed():
    done = subprocess.run([sys.executable, "-m", "services", "fx", "fetch", "--source", "nbkr",
                           str(DATA / "nbkr/bad_value.xml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "nbkr: <Currency> 2 (EUR) <Value> is empty" in done.stderr
