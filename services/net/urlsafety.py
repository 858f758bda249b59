"""Refuse URLs that would make tulpar talk to its own network (SSRF).

Users supply webhook targets and feed URLs, and feeds redirect where they
like, so a URL like http://169.254.169.254/ (cloud metadata) or
http://10.0.0.5:6379/ must not be reachable from the worker. We resolve the
host and check *every* address it resolves to, because one public and one
private A record is a classic bypass.

`vetted_addresses` returns the addresses it checked so the caller can connect to
exactly those (see httpclient.pinned): resolving again at connect time would
let a DNS server answer differently the second time (DNS rebinding).
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

from services.redact import redact

ALLOWED_SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UnsafeURL(ValueError):
    """The URL is malformed or points somewhere we refuse to send to.

    `url` is redacted; `problem` is what is wrong with it, without the URL, for
    callers that name the URL their own way (a feed names the redirect hop).
    """

    def __init__(self, url: str, problem: str):
        self.url = redact(url)
        self.problem = problem
        super().__init__(f"refusing {self.url}: {problem}")


class HostLookupFailed(OSError):
    """The host name did not resolve (may be temporary: callers may retry)."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# why_blocked's shape: a reason the address is not public, or None. A parameter
# wherever addresses are judged, so tests on loopback can call one address public.
Classifier = Callable[[IPAddress], str | None]


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_blocked(ip: IPAddress) -> str | None:
    """A short reason the address is not public, or None when it is."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = why_blocked(inner)
        return f"{reason} (embedded in {ip})" if reason else None
    checks = [
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.version == 4 and ip in _SHARED_CGNAT, "shared (carrier-grade NAT)"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (ip.version == 6 and ip.is_site_local, "site-local"),
        # Anything else IANA does not call globally reachable (documentation
        # ranges, benchmarking, 192.0.0.0/24 ...).
        (not ip.is_global, "not globally reachable"),
    ]
    return next((reason for hit, reason in checks if hit), None)


def _split(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(url, f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL(url, f"scheme {scheme or '(none)'!r} is not allowed: use http or https")
    if not parts.hostname:
        raise UnsafeURL(url, "no host name")
    if any(c.isspace() for c in url):
        raise UnsafeURL(url, "whitespace in the URL")
    return parts.hostname, port or (443 if scheme == "https" else 80)


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool, resolve: bool = True,
              classify: Classifier = why_blocked) -> None:
    """Raise UnsafeURL unless `url` is http(s) and every address of its host is public.

    With `allow_private` only the syntax is checked. With `resolve=False` (config
    validation, which must not do network I/O) only IP-literal hosts are checked.
    Raises HostLookupFailed when the name does not resolve.
    """
    vetted_addresses(url, allow_private=allow_private, resolve=resolve, classify=classify)


def vetted_addresses(url: str, *, allow_private: bool, resolve: bool = True,
                     classify: Classifier = why_blocked) -> list[IPAddress]:
    """Like check_url, and return the checked addresses in resolver order.

    Empty when nothing was resolved (`allow_private`, or a name with
    `resolve=False`): the caller then lets its client resolve. `classify`
    judges each address (default: why_blocked).
    """
    host, port = _split(url)
    if allow_private:
        return []
    literal = _literal_ip(host)
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return []
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise HostLookupFailed(f"cannot resolve host of {redact(url)}: {exc}") from None
        # getaddrinfo also normalises odd IPv4 spellings (2130706433, 0x7f.1),
        # so checking its answers covers them.
        found = (ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos)
        addresses = list(dict.fromkeys(found))
    for ip in addresses:
        reason = classify(ip)
        if reason:
            raise UnsafeURL(url, f"it resolves to {ip}, which is {reason}; "
                                 "set TULPAR_ALLOW_PRIVATE_TARGETS=true to allow private targets")
    return addresses
