"""`tulpar fx fetch --source NAME URL`: read one publisher rate file, print it as CSV.

    at,pair,rate
    2026-11-25,USD/KZT,518.2
    2026-11-25,UZS/KZT,0.0393

`at` is the publisher's date for the rate (YYYY-MM-DD), pairs are in our
convention (BASE/QUOTE = price of 1 BASE in QUOTE) with the nominal divided
out, rates are plain decimals. Rows keep the file's order; stale items are
skipped. Exit codes: 0 ok, 1 the file could not be fetched or read, 2 the
file is malformed (the message names the source and what is wrong).

URL is http(s)://..., file://... or a local path. The I/O lives here; the
adapters in services.sources.rates are pure.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Sequence, TextIO
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from services.fx.quote import Quote
from services.sources.rates import FILE_ADAPTERS, RateFormatError
from services.sources.rates.common import format_rate

HTTP_TIMEOUT = 30.0
MAX_BYTES = 20 * 1024 * 1024
USER_AGENT = "tulpar/0.1 (+rate fetch)"


class FetchError(Exception):
    """The file could not be had: network, HTTP status, missing local file."""


def read_source(url: str, *, timeout: float = HTTP_TIMEOUT) -> bytes:
    """The bytes at `url` (http, https, file) or at a local path."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        import httpx

        try:
            with httpx.Client(
                timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
            ) as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise FetchError(f"{url}: HTTP {response.status_code}")
        if len(response.content) > MAX_BYTES:
            raise FetchError(f"{url}: larger than {MAX_BYTES} bytes")
        return response.content
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise FetchError(f"{url}: only local file:// URLs are supported")
        path = Path(url2pathname(unquote(parsed.path)))
    elif scheme == "" or (len(scheme) == 1 and url[1:2] == ":"):  # a plain path (or C:\...)
        path = Path(url)
    else:
        raise FetchError(f"{url}: unsupported URL scheme {scheme!r} (use http, https, file or a path)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FetchError(f"{path}: {exc.strerror or exc}") from None


def write_csv(quotes: Sequence[Quote], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at", "pair", "rate"])
    for q in quotes:
        writer.writerow([q.at.date().isoformat(), q.pair, format_rate(q.rate)])


def fetch(source: str, url: str, out: TextIO, err: TextIO) -> int:
    """Fetch, parse and print; returns the exit code."""
    adapter = FILE_ADAPTERS.get(source)
    if adapter is None:
        print(f"tulpar fx fetch: unknown source {source!r} (one of {', '.join(FILE_ADAPTERS)})", file=err)
        return 2
    try:
        body = read_source(url)
    except FetchError as exc:
        print(f"tulpar fx fetch: {source}: cannot fetch {exc}", file=err)
        return 1
    try:
        quotes = adapter.parse(body)
    except RateFormatError as exc:
        message = str(exc)
        if not message.startswith(f"{adapter.NAME}:"):
            message = f"{adapter.NAME}: {message}"
        print(f"tulpar fx fetch: {message} (in {url})", file=err)
        return 2
    write_csv(quotes, out)
    out.flush()
    return 0


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", required=True, choices=list(FILE_ADAPTERS), help="publisher format of the file"
    )
    parser.add_argument("url", metavar="URL", help="http(s):// or file:// URL, or a local path")


def _handler(args: argparse.Namespace) -> int:
    return fetch(args.source, args.url, sys.stdout, sys.stderr)


def register(fx_sub) -> None:
    """Add `fetch` to the `tulpar fx` subparsers object."""
    parser = fx_sub.add_parser(
        "fetch",
        help="read one publisher rate file and print it as CSV (at,pair,rate)",
        description=__doc__.split("\n\n")[0],
    )
    _add_arguments(parser)
    parser.set_defaults(handler=_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (`python -m services.cli.fx_fetch --source nbk URL`)."""
    parser = argparse.ArgumentParser(prog="tulpar fx fetch", description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _handler(args)
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
