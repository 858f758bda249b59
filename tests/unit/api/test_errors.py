"""The error body's pieces: where a field is named from FastAPI's error
locations, and the log filter that masks keys and confirmation paths."""
from __future__ import annotations

import logging

import pytest

from services.api import access
from services.api.errors import field_of


@pytest.mark.parametrize("loc, field", [
    (("body",), None),
    (("body", "name"), "name"),
    (("body", "fx", "pair"), "fx.pair"),
    (("body", "channels", 1), "channels[1]"),
    (("body", "webhook", "url"), "url"),
    (("body", "email", "address"), "address"),
    (("query", "limit"), "limit"),
    (("path", "delivery_id"), "delivery_id"),
    (("body", "fx", "function-after[_no_nul(), str]"), "fx"),
])
def test_field_of(loc, field):
    assert field_of(loc) == field


@pytest.mark.parametrize("line, hidden, kept", [
    ('127.0.0.1:5 - "GET /v1/channels/confirm/Abc-123_xyz HTTP/1.1" 200', "Abc-123_xyz", "/v1/channels/confirm/***"),
    ("key tlp_Zm9vYmFyYmF6-_x used", "tlp_Zm9vYmFyYmF6-_x", "tlp_***"),
    ("GET /v1/channels/confirm/{token} 200 1.0ms", None, "/v1/channels/confirm/{token}"),
])
def test_the_key_filter(caplog, line, hidden, kept):
    access.install_filter()
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info("%s", line)
    text = caplog.records[-1].getMessage()
    assert kept in text and (hidden is None or hidden not in text)
