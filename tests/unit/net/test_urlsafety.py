"""SSRF guard: which URLs a webhook, a feed or a feed's redirect may point at.

Hosts are IP literals or `localhost`, which resolve without a DNS server, so the
table is the same on any machine.
"""
from __future__ import annotations

import ipaddress

import pytest

from services.net.urlsafety import (HostLookupFailed, UnsafeURL, check_url, vetted_addresses,
                                why_blocked)


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://2130706433/", "loopback"),          # 127.0.0.1 as one decimal number
    ("http://0x7f.1/", "loopback"),              # ... and in hex shorthand
    ("http://0.0.0.0/", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.5:6379/", "private"),
    ("http://172.16.3.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://224.0.0.251/", "multicast"),
    ("http://240.0.0.1/", "private"),
    ("http://192.0.2.10/", "private"),           # documentation range
    ("http://[::1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[2002:a00:1::]/", "private"),       # 6to4 wrapping 10.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 wrapping 169.254.169.254
])
def test_private_targets_are_refused(url, reason):
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)  # the demo and tests switch the guard off


@pytest.mark.parametrize("url", [
    "https://8.8.8.8/hook",
    "http://1.1.1.1:8080/x?token=1",
    "https://[2606:4700:4700::1111]/",
    "https://[::ffff:8.8.8.8]/",
])
def test_public_addresses_pass(url):
    check_url(url, allow_private=False)


@pytest.mark.parametrize("url, match", [
    ("ftp://8.8.8.8/", "scheme 'ftp'"),
    ("file:///etc/passwd", "scheme 'file'"),
    ("gopher://8.8.8.8/", "scheme"),
    ("8.8.8.8/hook", "scheme"),
    ("https:///nohost", "no host"),
    ("http://8.8.8.8:99999/", "malformed"),
    ("http://[::1/", "malformed"),
    ("http://8.8.8.8/a b", "whitespace"),
])
def test_malformed_or_non_http_urls_are_refused_even_when_private_allowed(url, match):
    with pytest.raises(UnsafeURL, match=match):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url, refused", [
    ("http://127.0.0.1/", True),         # a literal is checked without DNS
    ("http://hooks.example.invalid/", False),  # a name is left for send time
])
def test_without_resolving_only_literals_are_checked(url, refused):
    if refused:
        with pytest.raises(UnsafeURL):
            check_url(url, allow_private=False, resolve=False)
    else:
        check_url(url, allow_private=False, resolve=False)


def test_unresolvable_host_is_a_lookup_failure_not_a_pass():
    with pytest.raises(HostLookupFailed, match="hooks.example.invalid"):
        check_url("https://hooks.example.invalid/x", allow_private=False)


@pytest.mark.parametrize("secret_url", [
    "http://user:hunter2@127.0.0.1/hook",
    "http://127.0.0.1/hook?token=hunter2",
])
def test_refusal_message_does_not_leak_credentials(secret_url):
    with pytest.raises(UnsafeURL) as caught:
        check_url(secret_url, allow_private=False)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("address, blocked", [
    ("8.8.8.8", False), ("100.127.255.255", True), ("100.128.0.0", False),
    ("198.18.0.1", True), ("255.255.255.255", True), ("fec0::1", True),
])
def test_why_blocked_edges(address, blocked):
    assert (why_blocked(ipaddress.ip_address(address)) is not None) is blocked


@pytest.mark.parametrize("url, allow_private, resolve, expected", [
    ("https://8.8.8.8/x", False, True, ["8.8.8.8"]),
    ("https://[2606:4700::1111]/", False, True, ["2606:4700::1111"]),
    ("http://127.0.0.1/", True, True, []),                  # guard off: client resolves
    ("https://hooks.example.invalid/", False, False, []),   # config time: no DNS
])
def test_vetted_addresses_are_what_the_channel_connects_to(url, allow_private, resolve, expected):
    found = vetted_addresses(url, allow_private=allow_private, resolve=resolve)
    assert [str(ip) for ip in found] == expected


@pytest.mark.parametrize("url, classify, result", [
    # The classifier is the policy: tests on loopback call one address public.
    ("http://127.0.0.1/", lambda ip: None, ["127.0.0.1"]),
    ("http://127.0.0.2/", lambda ip: None if str(ip) == "127.0.0.1" else why_blocked(ip), "loopback"),
    ("https://8.8.8.8/", lambda ip: "on the deny list", "which is on the deny list"),
])
def test_the_classifier_judges_each_address(url, classify, result):
    if isinstance(result, list):
        assert [str(ip) for ip in vetted_addresses(url, allow_private=False, classify=classify)] == result
    else:
        with pytest.raises(UnsafeURL, match=result):
            vetted_addresses(url, allow_private=False, classify=classify)


@pytest.mark.parametrize("url, shown, problem", [
    ("http://robot:hunter2@127.0.0.1:8080/feed?token=abc",
     "http://***@127.0.0.1:8080/feed?token=***",
     "it resolves to 127.0.0.1, which is loopback; "
     "set TULPAR_ALLOW_PRIVATE_TARGETS=true to allow private targets"),
    ("file:///etc/passwd", "file:///etc/passwd", "scheme 'file' is not allowed: use http or https"),
    ("https:///feed", "https:///feed", "no host name"),
])
def test_refusal_names_the_redacted_url_and_the_problem_apart(url, shown, problem):
    # A feed names the hop its own way ("redirected to URL, which is refused: ...").
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, allow_private=False)
    assert (caught.value.url, caught.value.problem) == (shown, problem)
    assert str(caught.value) == f"refusing {shown}: {problem}"
