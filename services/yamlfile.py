"""The one way user-supplied YAML is read: the config file, `tulpar classify
--rules` and `tulpar fx evaluate --rules` all come through here.

YAML has aliases: `*a` stands for the whole node anchored `&a`. The parsers
keep an alias as a reference, so a 300-byte file of nine anchors, each a list
of nine aliases to the one before (the "billion laughs"), is cheap to parse but
stands for 9**9 nodes, and any code that walks the data as a tree (the config
loader does, to know every value's line) expands it into gigabytes. So before
anything walks the document we work out, without expanding anything, how many
nodes and how many levels of nesting it stands for, and refuse it past the
limits below. A file is also refused before it is read when it is larger than
the caller's byte limit (settings.max_config_bytes).

Every error is a YamlError that says `FILE:LINE: what is wrong` (no line when
none applies, e.g. for the size of the file).

`load()` first tries a plain reading (`_Plain`): Python values straight from
the parser's events, for a document without anchors, aliases, explicit tags,
merge keys or collections as keys (a rules file, most configs). Without
aliases a document stands for just what is written, so the one limit left to
enforce is the nesting depth, checked as each collection opens. At anything
else, and at any error, the plain reading stops and the general one
(compose, then construct) reads the text again: so every refusal and every
error message is the general reading's, and the values are the same (both
resolve and construct scalars with PyYAML's own resolver and constructors;
tests/unit/test_yamlfile.py compares the two).
"""
from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
                         SequenceStartEvent, StreamEndEvent)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader
from yaml.resolver import BaseResolver

from services import collector
from services.errors import TulparError

# libyaml's C parser when PyYAML was built with it (several times faster on a
# big rules file), else the pure-Python one. Both give the same events, with
# line numbers, and the composing below is ours either way, so the limits and
# their messages do not depend on which is installed.
PARSERS = {"python": yaml.SafeLoader}
if yaml.__with_libyaml__:
    PARSERS["libyaml"] = yaml.CSafeLoader
DEFAULT_PARSER = "libyaml" if "libyaml" in PARSERS else "python"


@dataclass(frozen=True)
class Limits:
    # Aliases are allowed, with a budget, rather than refused: a config shares
    # one channel list or one fx rule among many subscriptions with them, and
    # a budget proportional to what is written keeps the cost of any accepted
    # file within a small multiple of the cost of the same bytes without
    # aliases (which the byte limit already bounds).
    max_depth: int = 64             # levels of nesting, aliases expanded
    expansion_ratio: int = 10       # expanded nodes per node written in the file...
    min_expanded: int = 10_000      # ...but always at least this many


LIMITS = Limits()
# Sizes stop counting here: past any limit, and it keeps the sums of a deep
# chain of aliases small integers.
_CLAMP = 1 << 62


class YamlError(TulparError, ValueError):
    def __init__(self, file: str, line: int | None, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


def read_text(path: str | Path, max_bytes: int) -> str:
    """The file's text; refused unread when larger than max_bytes."""
    try:
        with open(path, "rb") as f:
            return read_stream(f, str(path), max_bytes)
    except OSError as exc:
        raise YamlError(str(path), None, f"cannot read: {exc.strerror or exc}") from None


def read_stream(f: BinaryIO, name: str, max_bytes: int) -> str:
    """At most max_bytes from an open binary file (standard input too), as text."""
    size = _regular_file_size(f)
    if size > max_bytes:
        raise _too_big(name, max_bytes)
    # Then read up to one byte more than allowed: a pipe, or a file still
    # growing, has no size to trust. In pieces, as f.read(max_bytes + 1) would
    # set aside the whole limit for every small file.
    parts, total, want = [], 0, size + 1
    while total <= max_bytes:
        part = f.read(min(want, max_bytes + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
        want = 1 << 16
    if total > max_bytes:
        raise _too_big(name, max_bytes)
    data = b"".join(parts)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlError(name, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _regular_file_size(f: BinaryIO) -> int:
    """The size a regular file says it has; 0 for a pipe, a terminal or a
    stream without a descriptor (their reads are bounded instead)."""
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _too_big(name: str, max_bytes: int) -> YamlError:
    return YamlError(name, None, f"larger than the limit of {max_bytes:,} bytes "
                                 "(TULPAR_MAX_CONFIG_BYTES raises it)")


def load(text: str, file: str, limits: Limits = LIMITS, parser: str = DEFAULT_PARSER) -> Any:
    """The document as plain Python (None for an empty one), like yaml.safe_load."""
    _check_characters(text, file)
    try:
        return plain_load(text, limits, parser)
    except Exception:  # noqa: BLE001  anything unusual, any error: the general reading decides and says
        pass
    node = _compose(text, file, limits, parser)
    return None if node is None else construct(node, file)


def plain_load(text: str, limits: Limits = LIMITS, parser: str = DEFAULT_PARSER) -> Any:
    """`load()` by the plain reading only (see the module docstring): raises
    Unusual for what it leaves to the general one, or the error it met."""
    events = PARSERS[parser](text)
    try:
        with collector.paused():
            return _Plain(events, limits).document()
    finally:
        events.dispose()


def compose(text: str, file: str, limits: Limits = LIMITS, parser: str = DEFAULT_PARSER) -> Node | None:
    """The document's node graph (None for an empty one), within the limits.
    An alias is the node it refers to (shared, as in PyYAML)."""
    _check_characters(text, file)
    return _compose(text, file, limits, parser)


def _check_characters(text: str, file: str) -> None:
    bad = Reader.NON_PRINTABLE.search(text)
    if bad:
        # Checked here so that both parsers say the same thing, with a line.
        raise YamlError(file, text.count("\n", 0, bad.start()) + 1,
                        f"not valid YAML: character #x{ord(bad.group()):04x} is not allowed")


def _compose(text: str, file: str, limits: Limits, parser: str) -> Node | None:
    events = PARSERS[parser](text)
    try:
        with collector.paused():
            return _Composer(events, file, limits).document()
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(file, exc) from None
    except yaml.YAMLError as exc:
        raise YamlError(file, None, f"not valid YAML: {exc}") from None
    finally:
        events.dispose()


def construct(node: Node, file: str) -> Any:
    """Python values for a composed document (what yaml.safe_load gives)."""
    try:
        with collector.paused():
            return _Constructor().construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(file, exc) from None


def scalar(node: ScalarNode, file: str) -> Any:
    """One scalar's Python value: int, float, bool, None, date, str..."""
    return construct(node, file)


def line(node: Node) -> int:
    return node.start_mark.line + 1


def _yaml_error(file: str, exc: yaml.MarkedYAMLError) -> YamlError:
    mark = exc.problem_mark or exc.context_mark
    return YamlError(file, mark.line + 1 if mark else None, f"not valid YAML: {exc.problem or exc.context}")


class _Constructor(SafeConstructor):
    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # PyYAML's own constructors fail like this on `!!int x`, `!!bool maybe`
            # or a timestamp like 2024-13-45; say which value, where.
            raise ConstructorError(None, None, f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}",
                                   node.start_mark) from None


class _Composer:
    """PyYAML's composer without recursion, counting as it goes: for every
    finished node, how many nodes and levels it stands for with aliases
    expanded (an alias costs what its anchor cost, looked up, never walked)."""

    def __init__(self, events, file: str, limits: Limits):
        self.events, self.file, self.limits = events, file, limits
        self.anchors: dict[str, Node] = {}
        self.cost: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, depth), once its node is finished
        self.written = 0  # nodes written in the file (aliases are not)
        self.biggest: tuple[int, int, str] = (0, 0, "")  # the costliest alias: nodes, line, name

    def document(self) -> Node | None:
        get = self.events.get_event
        get()  # stream start
        if isinstance(self.events.peek_event(), StreamEndEvent):
            return None
        get()  # document start
        root, nodes, _ = self._node()
        get()  # document end
        extra = get()
        if not isinstance(extra, StreamEndEvent):
            raise self._error(extra, "expected a single document in the stream, but found another document")
        self._check_expansion(nodes)
        return root

    def _check_expansion(self, nodes: int) -> None:
        allowed = max(self.limits.min_expanded, self.limits.expansion_ratio * self.written)
        if nodes <= allowed:
            return
        size, at, name = self.biggest
        raise YamlError(self.file, at, f"aliases would expand the document past {allowed:,} nodes (the limit: "
                                       f"{self.limits.expansion_ratio} x the {self.written:,} written in the "
                                       f"file, at least {self.limits.min_expanded:,}); the alias *{name} here "
                                       f"alone stands for {size:,}")

    def _node(self) -> tuple[Node, int, int]:
        """One whole node from the events: (node, nodes, depth) with aliases expanded."""
        get = self.events.get_event
        stack: list[list] = []  # per open collection: [node, nodes, deepest child, anchor, key awaiting value]
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                done = self._scalar(event)
            elif kind is SequenceStartEvent or kind is MappingStartEvent:
                stack.append(self._open(event, len(stack)))
                continue
            elif kind is SequenceEndEvent or kind is MappingEndEvent:
                done = self._close(event, stack.pop())
            elif kind is AliasEvent:
                done = self._alias(event, len(stack))
            else:  # not given inside a document; here so a surprise cannot loop
                raise self._error(event, f"unexpected {kind.__name__}")
            if not stack:
                return done
            _attach(stack[-1], *done)

    def _scalar(self, event) -> tuple[Node, int, int]:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.events.resolve(ScalarNode, event.value, event.implicit)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        self.written += 1
        if event.anchor is not None:
            self._anchor(event, node)
            self.cost[event.anchor] = (1, 0)
        return node, 1, 0

    def _open(self, event, open_levels: int) -> list:
        if open_levels >= self.limits.max_depth:
            raise self._error(event, f"nested more than {self.limits.max_depth} levels deep")
        sequence = type(event) is SequenceStartEvent
        tag = event.tag
        if tag is None or tag == "!":
            tag = BaseResolver.DEFAULT_SEQUENCE_TAG if sequence else BaseResolver.DEFAULT_MAPPING_TAG
        node = (SequenceNode if sequence else MappingNode)(tag, [], event.start_mark, None,
                                                           flow_style=event.flow_style)
        self.written += 1
        if event.anchor is not None:
            self._anchor(event, node)
        return [node, 1, 0, event.anchor, None]

    def _close(self, event, frame: list) -> tuple[Node, int, int]:
        node, nodes, deepest, anchor, _ = frame
        node.end_mark = event.end_mark
        if anchor is not None:
            self.cost[anchor] = (nodes, deepest + 1)
        return node, nodes, deepest + 1

    def _anchor(self, event, node: Node) -> None:
        if event.anchor in self.anchors:
            raise self._error(event, f"the anchor &{event.anchor} is defined twice "
                                     f"(first on line {line(self.anchors[event.anchor])})")
        self.anchors[event.anchor] = node

    def _alias(self, event, open_levels: int) -> tuple[Node, int, int]:
        name = event.anchor
        if name not in self.anchors:
            raise self._error(event, f"the alias *{name} has no anchor &{name} before it")
        if name not in self.cost:
            raise self._error(event, f"the alias *{name} is inside the node it refers to (a loop)")
        nodes, depth = self.cost[name]
        if open_levels + depth > self.limits.max_depth:
            raise self._error(event, f"the alias *{name} nests the document more than "
                                     f"{self.limits.max_depth} levels deep")
        if nodes > self.biggest[0]:
            self.biggest = (nodes, event.start_mark.line + 1, name)
        return self.anchors[name], nodes, depth

    def _error(self, event, message: str) -> YamlError:
        return YamlError(self.file, event.start_mark.line + 1, message)


def _attach(frame: list, child: Node, nodes: int, depth: int) -> None:
    """Add a finished node to the open collection `frame` (a mapping takes
    its key, then the value)."""
    frame[1] = min(frame[1] + nodes, _CLAMP)
    if depth > frame[2]:
        frame[2] = depth
    parent = frame[0]
    if type(parent) is SequenceNode:
        parent.value.append(child)
    elif frame[4] is None:
        frame[4] = child
    else:
        parent.value.append((frame[4], child))
        frame[4] = None


class Unusual(Exception):
    """What the plain reading leaves to the general one."""


# Tags an untagged plain scalar may resolve to that the plain reading
# constructs itself (with PyYAML's constructors); any other (a merge key
# `<<`, the `=` value key...) is left to the general reading.
_STR = BaseResolver.DEFAULT_SCALAR_TAG
_PLAIN_TAGS = frozenset({_STR, "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                         "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"})
_SEQUENCE = object()  # the key slot of an open sequence
_NO_KEY = object()  # the key slot of an open mapping waiting for a key


class _Plain:
    """Python values straight from the events of a document without anchors,
    aliases, explicit tags, merge keys or collections as keys, as
    `construct(compose(...))` gives them; Unusual at anything else.

    A scalar gets the tag `compose` gives it (PyYAML's resolver; a plain
    scalar whose first character starts no implicit tag is a string, as the
    resolver has nothing to try on it) and, unless a string, the value
    `construct` gives it (PyYAML's constructor for that tag)."""

    def __init__(self, events, limits: Limits):
        self.events, self.limits = events, limits

    def document(self) -> Any:
        events = self.events
        get = events.get_event
        get()  # stream start
        if type(events.peek_event()) is StreamEndEvent:
            return None
        resolvers = events.yaml_implicit_resolvers
        if None in resolvers or events.yaml_path_resolvers:
            raise Unusual("resolvers for every scalar, or by path")
        get()  # document start
        root, written = self._root(get, resolvers.keys())
        get()  # document end
        if type(get()) is not StreamEndEvent:
            raise Unusual("another document")
        # Without aliases the document stands for the nodes written, so this
        # passes unless the limits are set below 1 x what is written.
        if written > max(self.limits.min_expanded, self.limits.expansion_ratio * written):
            raise Unusual("past the expansion limit")
        return root

    def _root(self, get, starts) -> tuple[Any, int]:
        resolve = self.events.resolve
        constructor = _Constructor()
        tags: dict[str, str] = {}  # plain scalar -> its tag, resolved once
        max_depth = self.limits.max_depth
        outer: list[tuple[Any, Any]] = []  # per enclosing collection: (it, its key slot)
        top, slot = None, None  # the innermost open collection and its key slot
        written = 0
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                if event.anchor is not None:
                    raise Unusual("an anchor")
                tag = event.tag
                if tag is not None and tag != "!":
                    raise Unusual("an explicit tag")
                value = event.value
                if event.implicit[0] and (not value or value[0] in starts):
                    tag = tags.get(value)
                    if tag is None:
                        tag = tags[value] = resolve(ScalarNode, value, event.implicit)
                    if tag is not _STR and tag != _STR:
                        if tag not in _PLAIN_TAGS:
                            raise Unusual(f"a scalar tagged {tag}")
                        value = constructor.construct_document(
                            ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style))
                written += 1
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.anchor is not None:
                    raise Unusual("an anchor")
                tag = event.tag
                if tag is not None and tag != "!":
                    raise Unusual("an explicit tag")
                if top is not None:
                    if len(outer) + 1 >= max_depth:
                        raise Unusual("too deep")
                    if slot is _NO_KEY:
                        raise Unusual("a collection as a key")
                    outer.append((top, slot))
                elif max_depth <= 0:
                    raise Unusual("too deep")
                written += 1
                if kind is MappingStartEvent:
                    top, slot = {}, _NO_KEY
                else:
                    top, slot = [], _SEQUENCE
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                if not outer:
                    return top, written
                value = top
                top, slot = outer.pop()
            else:
                raise Unusual(f"{kind.__name__}")
            if slot is _SEQUENCE:
                top.append(value)
            elif slot is _NO_KEY:
                slot = value
            elif top is None:  # the document is one scalar
                return value, written
            else:
                top[slot] = value
                slot = _NO_KEY
