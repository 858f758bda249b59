"""`tulpar api [--host 127.0.0.1] [--port 8000]`: serve the HTTP API
(docs/api.md) with uvicorn. Refuses a database that is not migrated (exit 2,
naming `tulpar db upgrade`); prints the address it serves on once it is
listening. uvicorn's access log is off (paths can carry confirmation
tokens): services/api/access.py logs each request's route instead."""
from __future__ import annotations

import logging
import sys

# FastAPI, uvicorn and SQLAlchemy are imported in the handler: other commands start fast.


def register(sub) -> None:
    p = sub.add_parser("api", help="serve the HTTP API (FastAPI on uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    import uvicorn

    from services.api import access
    from services.api.app import create_app
    from services.settings import Settings
    from services.store import schema

    try:
        settings = Settings()
    except ValueError as exc:
        print(f"tulpar api: bad setting: {exc}", file=sys.stderr)
        return 2
    try:
        store = schema.open_migrated(settings.db_url)
    except schema.SchemaError as exc:
        print(f"tulpar api: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("services.api").setLevel(logging.INFO)  # the access log and tenant creations
    access.install_filter()
    app = create_app(settings, store)
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False, log_config=None,
                            server_header=False, lifespan="on")
    try:
        _Server(config).run()
    finally:
        store.dispose()
    return 0


class _Server:
    """uvicorn.Server that prints where it listens once it does."""

    def __new__(cls, config):
        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets=None):
                await super().startup(sockets=sockets)
                if self.started:
                    print(f"tulpar api: serving on {_address(self)} (docs: {_address(self)}/docs)", flush=True)

        return Server(config)


def _address(server) -> str:
    host, port = server.config.host, server.config.port
    for s in server.servers:
        for sock in s.sockets:
            host, port = sock.getsockname()[:2]
            break
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
