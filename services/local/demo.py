"""The offline demo's news site: publishes the items of demo/feeds/*.xml one
at a time into a served folder, as a real site would over a morning.

Each run stamps the guids with the run's start time, so a second `make run`
alerts again instead of finding everything already seen.

Also the demo's tenant (demo_tenant): the config's subscriptions applied to
it, and its API key kept in a file so that every run prints the same one.
"""
from __future__ import annotations

import copy
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path


class DemoPublisher:
    def __init__(self, source_dir: Path, www_dir: Path, run_stamp: str, first: int = 3):
        self.www_dir = Path(www_dir)
        self.run_stamp = run_stamp
        self.feeds = {p.name: ET.parse(p) for p in sorted(Path(source_dir).glob("*.xml"))}
        self.published = {name: min(first, len(self._items(tree))) for name, tree in self.feeds.items()}

    @staticmethod
    def _items(tree: ET.ElementTree) -> list[ET.Element]:
        return tree.getroot().findall("./channel/item")

    def write(self) -> None:
        self.www_dir.mkdir(parents=True, exist_ok=True)
        for name, tree in self.feeds.items():
            tree = copy.deepcopy(tree)
            channel = tree.getroot().find("channel")
            items = self._items(tree)
            for n, item in enumerate(items):
                if n >= self.published[name]:
                    channel.remove(item)
                    continue
                guid = item.find("guid")
                if guid is not None:
                    guid.text = f"{guid.text}-{self.run_stamp}"
            tmp = self.www_dir / (name + ".tmp")
            tree.write(tmp, encoding="utf-8", xml_declaration=True)
            tmp.rename(self.www_dir / name)  # the poller never reads half a file

    def publish_next(self) -> bool:
        """Publish one more item of each feed; False once all are out."""
        more = False
        for name, tree in self.feeds.items():
            if self.published[name] < len(self._items(tree)):
                self.published[name] += 1
                more = True
        if more:
            self.write()
        return more


class DemoRates:
    """The demo's central bank: serves demo/rates/*.xml (NBK files, in order)
    one day at a time as a single `get_rates.xml`, as nationalbank.kz serves
    the day's rates, with each file's <date> set to the day it stands for.

    Rates are stored per (source, pair, day), so a second `make run` on the
    same database would find every day already stored and alert nothing. The
    last day published is therefore kept in `state_file` (under var/, next to
    the database) and each run continues with the following days.
    """

    def __init__(self, source_dir: Path, target: Path, state_file: Path, today: date):
        self.bodies = [p.read_text(encoding="utf-8") for p in sorted(Path(source_dir).glob("*.xml"))]
        self.target, self.state_file = Path(target), Path(state_file)
        last = None
        if self.state_file.exists():
            try:
                last = date.fromisoformat(self.state_file.read_text().strip())
            except ValueError:
                last = None
        start = today - timedelta(days=len(self.bodies) - 1)
        self.next_day = max(start, last + timedelta(days=1)) if last else start
        self.published = 0

    def publish_next(self) -> bool:
        """Publish the next file as the next day; False once all are out."""
        if self.published >= len(self.bodies):
            return False
        day = self.next_day
        body = re.sub(r"<date>[^<]*</date>", f"<date>{day.strftime('%d.%m.%Y')}</date>",
                      self.bodies[self.published], count=1)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.target.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.rename(self.target)  # the poller never reads half a file
        self.state_file.write_text(day.isoformat())
        self.next_day, self.published = day + timedelta(days=1), self.published + 1
        return True


@dataclass(frozen=True)
class DemoTenant:
    applied: object  # services.accounts.configcode.Applied
    key: str


def demo_tenant(store, name: str, desired, key_file: Path, settings, now: datetime) -> DemoTenant:
    """Apply `desired` (configcode.Desired) to the tenant `name`, creating it
    when missing, and return its API key. Only the key's hash is stored, so
    the plaintext is kept in `key_file` (mode 0600, beside the database);
    when that file is missing or holds a key that is not the tenant's (a
    database made anew), the key is rotated and the file written again."""
    from services.accounts import configcode, tenants

    applied = configcode.apply(store, name, desired, settings, now)
    key = applied.api_key
    if key is None:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            key = ""
        found = tenants.by_key(store, key) if key else None
        if found is None or found.id != applied.tenant_id:
            key = tenants.rotate_key(store, applied.tenant_id)
        else:
            os.chmod(key_file, 0o600)  # in case it was copied or edited meanwhile
            return DemoTenant(applied, key)
    write_secret(Path(key_file), key)
    return DemoTenant(applied, key)


def write_secret(path: Path, text: str) -> None:
    """`text` in `path`, readable by its owner only (0600), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, path)
