"""Local stand-ins for the outside world, used by the offline demo and the tests:
a Redis process, an SMTP sink, a webhook sink and a static file server. All bind
loopback on a free port."""
