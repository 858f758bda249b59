"""`tulpar run` prints each alert the local sinks write, once: those of earlier
runs are left out, those delivered while it was still starting are not."""
import json

from services.cli import run


class StopAfter:
    """A stop request that comes after `n` looks (one look a pass of the loop)."""

    def __init__(self, n: int):
        self.looks, self.n = 0, n

    @property
    def requested(self) -> bool:
        self.looks += 1
        return self.looks > self.n


class NoPublisher:
    def publish_next(self) -> None:
        raise AssertionError("nothing is published with publish_every this long")


def webhook(var, name: str, title: str) -> None:
    (var / "webhooks" / name).write_text(json.dumps({"payload": {"subscription": "desk", "title": title}}))


def test_alerts_written_during_start_up_are_printed_and_earlier_runs_are_not(tmp_path, capsys):
    var = tmp_path / "var"
    for d in ("mail", "webhooks"):
        (var / d).mkdir(parents=True)
    webhook(var, "1-old.json", "From an earlier run")
    earlier = run.alert_files(var)  # as `tulpar run` takes it, before any child starts
    webhook(var, "2-start.json", "Delivered while the API was starting")

    assert run._watch(var, earlier, [], StopAfter(1), NoPublisher(), publish_every=3600) == 0

    out = capsys.readouterr().out
    assert "desk: Delivered while the API was starting" in out
    assert "From an earlier run" not in out
    assert out.count("webhook  ") == 1
