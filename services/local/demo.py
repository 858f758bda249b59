"""The offline demo's news site: publishes the items of demo/feeds/*.xml one
at a time into a served folder, as a real site would over a morning.

Each run stamps the guids with the run's start time, so a second `make run`
alerts again instead of finding everything already seen.
"""
from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
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
