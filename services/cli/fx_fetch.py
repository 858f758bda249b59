"""`tulpar fx fetch --source NAME URL`: read one publisher rate file, print it as CSV.

    at,pair,rate
    2026-11-25,USD/KZT,518.2
    2026-11-25,UZS/KZT,0.0393

`at` is the publisher's date for the rate (YYYY-MM-DD), pairs are in our
convention (BASE/QUOTE = price of 1 BASE in QUOTE) with the nominal divided
out, rates are plain decimals. Rows keep the file's order; stale items are
skipped. Exit codes: 0 ok, 1 the file could not be fetched or read, 2 the
file is malformed (the message names the source and what is wrong).

URL is http(s)://..., file://... or a local path, fetched by the pollers' own
fetcher (services.net.fetch: the same user agent, deadline and size limit)
as the operator's curl: loopback, private addresses and local files are read,
a public server's redirect to a private address is not. The I/O lives here;
the adapters in services.fx.sources are pure.
"""
from __future__ import annotations

import argparse
import csv
import sys
from typing import Sequence, TextIO

from services.fx.quote import Quote
from services.settings import Settings
from services.net.fetch import SourceError
from services.net.fetch import fetch as fetch_url
from services.fx.sources import FILE_ADAPTERS, RateFormatError
from services.fx.sources.common import format_rate


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
        # No validators are sent, so no 304 is due; a server sending one anyway
        # sent no file, which the adapter reports as such.
        body = fetch_url(url, None, Settings(), operator=True).body or b""
    except SourceError as exc:
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
