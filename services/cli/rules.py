"""`tulpar rules` (placeholder: being written)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("rules", help="(not yet implemented)")
    p.set_defaults(handler=lambda args: (print("tulpar rules: not implemented yet"), 2)[1])
