"""Feed HTML to plain text: tags dropped, entities decoded, whitespace collapsed."""
from __future__ import annotations

import re
from html.parser import HTMLParser

# Text inside these never reads as prose; feedparser's sanitizer removes most
# of them already, but it can be switched off and `style` survives it.
_INVISIBLE = {"script", "style", "template", "noscript"}
# Tags that separate words when rendered; without a space "end.<br>Next" would
# become "end.Next".
_BREAKS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "img", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td",
    "th", "tr", "ul",
}
_SPACE = re.compile(r"\s+")
# Control characters and lone surrogates cannot be printed or encoded as UTF-8.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _BREAKS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def clean_text(text: str) -> str:
    """Collapse whitespace and drop characters no output can carry."""
    return _SPACE.sub(" ", _UNPRINTABLE.sub("", text)).strip()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment, as a reader would see it, on one line."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return clean_text("".join(collector.parts))
