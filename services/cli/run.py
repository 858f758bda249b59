"""`tulpar run` (placeholder: being written)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("run", help="(not yet implemented)")
    p.set_defaults(handler=lambda args: (print("tulpar run: not implemented yet"), 2)[1])
