"""The offline demo's news site: publishes the items of demo/feeds/*.xml one
at a time into a served folder, as a real site would over a morning.

Each run stamps the guids with the run's start time, so a second `make run`
alerts again instead of finding everything already seen.
"""
from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
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
