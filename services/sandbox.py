"""The sandbox for templates users write: render untrusted Jinja safely.

Jinja's immutable sandbox keeps a template away from Python's internals; this
module also bounds what a template can spend, so a subscriber's template can
neither hang a worker nor exhaust its memory. Every failure is a RenderError.
"""
from __future__ import annotations

import functools
import numbers
import re
import string
import time
import types
from collections.abc import Iterator
from contextvars import ContextVar

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Namespace
from jinja2.sandbox import (ImmutableSandboxedEnvironment, SandboxedEscapeFormatter,
                            SandboxedFormatter)
from markupsafe import Markup

from services.render import RenderError

MAX_USER_TEMPLATE_CHARS = 20_000
MAX_USER_OUTPUT_CHARS = 100_000
MAX_USER_RANGE = 1_000
# One value a user template builds, measured about as str() would print it.
MAX_USER_VALUE = 100_000
# All values one render builds, together (most are short-lived; this bounds the churn).
MAX_USER_BUILT = 1_000_000
# Wall clock for one render, compile included.
MAX_USER_SECONDS = 1.0


# The stock sandbox blocks unsafe attributes. A user template can still burn
# CPU or memory with ordinary means, so a render also gets a clock and size
# caps: every hook the sandbox has (calls, attribute and item access,
# intercepted operators, filters, range) and those our compiler adds
# ({% for %}, `~`, literals: see _GuardedCode) check the clock, and whatever
# can build a large value from a small input is measured before it is built
# or, when its parts are already bounded, right after.

_MAX_INT_BITS = 4096
_BUDGET: ContextVar["_Budget"] = ContextVar("user_template_budget")
# Methods of str a template may call: all bounded by their input's size, or
# checked in _checked_str_call. Others (translate, encode ...) are refused.
_STR_METHODS = frozenset("""
    capitalize casefold center count endswith expandtabs find format format_map
    index isalnum isalpha isascii isdecimal isdigit isidentifier islower isnumeric
    isprintable isspace istitle isupper join ljust lower lstrip partition
    removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip
    split splitlines startswith strip swapcase title upper zfill
    escape striptags unescape""".split())
_NUMBER_ATTRIBUTES = frozenset(
    "real imag numerator denominator bit_length conjugate is_integer as_integer_ratio".split())
# A %-conversion: optional mapping key, flags, width, precision, length, type.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)


class _Budget:
    """The clock and the building allowance of one user-template render."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_USER_SECONDS
        self.built = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"render took longer than {MAX_USER_SECONDS:g} s")

    def spend(self, value, what: str):
        """`value`, counted: refused when it alone, or all built so far, is too big."""
        self.tick()
        self.built += _size(value, what)
        if self.built > MAX_USER_BUILT:
            raise SecurityError(f"{what}: the template built over {MAX_USER_BUILT} chars in all")
        return value


def _budget() -> _Budget:
    try:
        return _BUDGET.get()
    except LookupError:
        raise RuntimeError("the user-template sandbox runs only inside user_template()") from None


def _size(value, what: str) -> int:
    """About len(str(value)), counting a shared part as often as str() prints
    it: `[a, a]` nested 30 deep is short to build and endless to print."""
    size, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            size += len(item)
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 1
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            size += 2 + 2 * len(item)  # brackets and separators
            if size <= MAX_USER_VALUE:
                stack.extend(item.items() if isinstance(item, dict) else item)
        elif isinstance(item, Namespace):
            # Its repr prints its attributes; jinja keeps them under this name.
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            size += 1
        _cap(size, what)
    return size


def _cap(size: int, what: str) -> None:
    if size > MAX_USER_VALUE:
        raise SecurityError(f"{what} too large (over {MAX_USER_VALUE} chars or items)")


def _width(value, what: str) -> int:
    """A width or count argument: refused when huge; 0 when not an int (the call fails later)."""
    if not isinstance(value, int):
        return 0
    if abs(value) > MAX_USER_VALUE:
        raise SecurityError(f"{what} over the limit of {MAX_USER_VALUE}")
    return value


def _spec_number(text: str, what: str) -> int:
    if text == "*":
        raise SecurityError(f"{what}: a '*' width or precision is not allowed")
    if len(text) > 6 or int(text or 0) > MAX_USER_VALUE:
        raise SecurityError(f"{what}: width or precision over the limit of {MAX_USER_VALUE}")
    return int(text or 0)


def _check_printf(fmt: str, args, what: str) -> None:
    """Refuse %-formatting whose result would be too big, before it is built.

    Every conversion may print the biggest argument: `%(a)s` can repeat one.
    """
    values = list(args) if isinstance(args, tuple) else [args]
    if isinstance(args, dict):
        values += args.values()
    biggest = max((max(len(str(v)), len(repr(v))) for v in values), default=0)
    size = len(fmt)
    for width, precision, kind in _PRINTF_SPEC.findall(fmt):
        if kind != "%":
            size += _spec_number(width, what) + _spec_number(precision, what) + biggest
    _cap(size, f"{what} result")


def _check_format_string(fmt: str) -> None:
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is not None and "{" in (spec or ""):
            raise SecurityError(
                "str.format: a width or precision from a nested field is not allowed")
        for number in re.findall(r"\d+", spec or ""):
            _spec_number(number, "str.format")


class _CountingFormatter(SandboxedFormatter):
    """str.format in the sandbox, charging each field to the render's budget as
    it is made: a short format string can repeat a big argument ("{0}{0}...")."""

    def format_field(self, value, format_spec):
        return _budget().spend(super().format_field(value, format_spec), "str.format field")


class _CountingEscapeFormatter(_CountingFormatter, SandboxedEscapeFormatter):
    pass


def _materialized(iterable, what: str) -> list:
    budget, items = _budget(), []
    for item in iterable:
        budget.tick()
        items.append(item)
        _cap(len(items), what)
    return items


def _joined_size(parts, separator: str, what: str) -> int:
    size = -len(separator)
    for part in parts:
        size += len(separator) + len(str(part))
        _cap(size, what)
    return size


def _replaced_size(text: str, old="", new="", count=-1) -> int:
    if not (isinstance(old, str) and isinstance(new, str) and isinstance(count, int)):
        return len(text)  # the call itself will fail
    hits = len(text) + 1 if old == "" else text.count(old)
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _checked_str_call(text: str, name: str, args: tuple, kwargs: dict) -> tuple:
    """Refuse a str method call whose result would be too big, before it is built.
    Returns the arguments to call it with."""
    if name in ("center", "ljust", "rjust", "zfill"):
        _width(args[0] if args else kwargs.get("width"), f"str.{name} width")
    elif name == "expandtabs":
        tabsize = _width(args[0] if args else kwargs.get("tabsize", 8), "str.expandtabs tab size")
        _cap(len(text) + text.count("\t") * tabsize, "str.expandtabs result")
    elif name == "replace":
        _cap(_replaced_size(text, *args[:3]), "str.replace result")
    elif name == "join" and args:
        parts = _materialized(args[0], "str.join input")
        _joined_size(parts, text, "str.join result")
        return (parts, *args[1:])
    return args


# Filters that take a width or count, or build from an iterable: each check
# gets the filter's own arguments (value first) and may return a replacement
# for the value (an iterable it had to read to measure).
def _check_indent(s, width=4, *_, **__):
    text = str(s)
    pad = len(width) if isinstance(width, str) else _width(width, "indent width")
    _cap(len(text) + (text.count("\n") + 1) * pad, "indent result")


def _check_wordwrap(s, width=79, break_long_words=True, wrapstring=None, *_, **__):
    text = str(s)
    lines = len(text) // max(_width(width, "wordwrap width"), 1) + text.count("\n") + 1
    _cap(len(text) + lines * len(str(wrapstring or "\n")), "wordwrap result")


def _check_join(value, d="", attribute=None):
    parts = _materialized(value, "join input")
    shown = parts if attribute is None else map(make_attrgetter(_USER_ENV, attribute), parts)
    _joined_size(shown, str(d), "join result")
    return parts


def _check_replace(s, old, new, count=None):
    _cap(_replaced_size(str(s), str(old), str(new), -1 if count is None else count),
         "replace result")


def _check_sum(iterable, attribute=None, start=0):
    # sum(lists, start=[]) is quadratic list building.
    if not isinstance(start, numbers.Number):
        raise SecurityError("sum: start must be a number")


def _check_format(value, *args, **kwargs):
    _check_printf(str(value), kwargs or args, "format filter")  # as the filter formats


def _check_list(value):
    return _materialized(value, "list")


def _width_check(filter_name: str, parameter: str):
    """The check for a filter whose second parameter is a width or a count."""
    def check(value, *args, **kwargs):
        _width(args[0] if args else kwargs.get(parameter), f"{filter_name} {parameter}")
    return check


_FILTER_CHECKS = {
    "center": _width_check("center", "width"), "truncate": _width_check("truncate", "length"),
    "batch": _width_check("batch", "linecount"), "slice": _width_check("slice", "slices"),
    "indent": _check_indent, "wordwrap": _check_wordwrap, "join": _check_join,
    "replace": _check_replace, "sum": _check_sum, "format": _check_format, "list": _check_list,
}


def _ticking(iterable):
    budget = _budget()
    for item in iterable:
        budget.tick()
        yield item


def _guarded_filter(name: str, func):
    check = _FILTER_CHECKS.get(name)
    # Filters marked pass_context/eval_context/environment get that first.
    skip = 1 if getattr(func, "jinja_pass_arg", None) else 0

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        budget = _budget()
        budget.tick()
        if check is not None:
            value = check(*args[skip:], **kwargs)
            if value is not None:
                args = (*args[:skip], value, *args[skip + 1:])
        result = func(*args, **kwargs)
        if isinstance(result, Iterator):  # map, select, batch ... are lazy
            return _ticking(result)
        return budget.spend(result, f"filter {name}")
    return guarded


def _small_range(*args: int) -> range:
    # The sandbox allows range(100_000); nested loops over that are a CPU bomb.
    _budget().tick()
    items = range(*args)
    if len(items) > MAX_USER_RANGE:
        raise SecurityError(f"range too big (more than {MAX_USER_RANGE} items)")
    return items


class _GuardedCode(CodeGenerator):
    """Compiles a user template so that each {% for %} step, each `~` and each
    list, tuple or dict literal passes through the sandbox: none has a hook of
    its own, and an empty loop body calls nothing that could look at the clock."""

    def visit_Template(self, node, frame=None):
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("loop_items"), [loop.iter],
                                   [], None, None, lineno=loop.lineno)
            loop.iter.set_environment(self.environment)
        super().visit_Template(node, frame)

    def _built(self, visit, node, frame, what: str) -> None:
        self.write("environment.built(")
        visit(node, frame)
        self.write(f", {what!r})")

    def visit_Concat(self, node, frame):
        self._built(super().visit_Concat, node, frame, "text joined with ~")

    def visit_List(self, node, frame):
        self._built(super().visit_List, node, frame, "list")

    def visit_Dict(self, node, frame):
        self._built(super().visit_Dict, node, frame, "dict")

    def visit_Tuple(self, node, frame):
        if node.ctx != "load":  # `{% for a, b in ... %}` assigns, builds nothing
            return super().visit_Tuple(node, frame)
        self._built(super().visit_Tuple, node, frame, "tuple")


class _UserSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox (no list.append to pile values up) with a clock
    and size caps on everything that can build a large value."""

    code_generator_class = _GuardedCode
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}
        self.globals["range"] = _small_range
        del self.globals["lipsum"]  # lipsum(n) writes n paragraphs

    def loop_items(self, iterable):
        return _ticking(iterable)

    def built(self, value, what: str):
        return _budget().spend(value, what)

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if isinstance(obj, bytes):
            return False
        if isinstance(obj, str) and attr not in _STR_METHODS:
            return False
        if isinstance(obj, (int, float)) and attr not in _NUMBER_ATTRIBUTES:
            return False  # e.g. (1).to_bytes(10 ** 9)
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj, attribute):
        _budget().tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _budget().tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value):
        # The stock method with our formatters (it has no hook to swap them).
        if not (isinstance(value, (types.MethodType, types.BuiltinMethodType))
                and value.__name__ in ("format", "format_map")
                and isinstance(value.__self__, str)):
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"
        _check_format_string(fmt)
        formatter = (_CountingEscapeFormatter(self, escape=fmt.escape)
                     if isinstance(fmt, Markup) else _CountingFormatter(self))

        def wrapper(*args, **kwargs):
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return type(fmt)(formatter.vformat(fmt, args, kwargs))
        return functools.update_wrapper(wrapper, value)

    def call(self, context, obj, /, *args, **kwargs):
        budget = _budget()
        budget.tick()
        name = getattr(obj, "__name__", type(obj).__name__)
        if isinstance(getattr(obj, "__self__", None), str):
            args = _checked_str_call(obj.__self__, name, args, kwargs)
        return budget.spend(super().call(context, obj, *args, **kwargs), f"{name}()")

    def call_binop(self, context, operator_name, left, right):
        budget = _budget()
        budget.tick()
        _check_binop(operator_name, left, right)
        result = self.binop_table[operator_name](left, right)
        return budget.spend(result, f"the result of {operator_name}")


def _check_binop(operator_name: str, left, right) -> None:
    sized = (str, list, tuple)
    if operator_name == "**":
        # Bound the result's size, not just the exponent: (10**64)**64 chains.
        bits = abs(left).bit_length() if isinstance(left, int) else 1
        if not isinstance(right, (int, float)) or bits * abs(right) > _MAX_INT_BITS:
            raise SecurityError("exponent too large")
    elif operator_name == "*" and isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise SecurityError("product too large")
    elif operator_name == "*":
        value, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(value, sized) and isinstance(count, int):
            _cap(_size(value, "repetition") * max(count, 0), "repetition")
    elif operator_name == "+" and isinstance(left, sized) and isinstance(right, sized):
        _cap(_size(left, "concatenation") + _size(right, "concatenation"), "concatenation")
    elif operator_name == "%" and isinstance(left, str):
        _check_printf(left, right, "% formatting")


_USER_ENV = _UserSandbox()


def _bounded(chunks) -> str:
    # Stream and stop at the cap: a loop of large strings must not be built in
    # memory first and measured after.
    budget, out, size = _budget(), [], 0
    for chunk in chunks:
        budget.tick()
        size += len(chunk)
        if size > MAX_USER_OUTPUT_CHARS:
            raise RenderError(f"user template output too long (over {MAX_USER_OUTPUT_CHARS} chars)")
        out.append(chunk)
    return "".join(out)


def user_template(source: str, context: dict) -> str:
    """Render a user-supplied template string in the sandbox; any failure is a RenderError.

    Bounded: template size, output size, the wall clock (MAX_USER_SECONDS,
    checked even in loops that print nothing), and every value the template
    builds (MAX_USER_VALUE each, MAX_USER_BUILT together).
    """
    if len(source) > MAX_USER_TEMPLATE_CHARS:
        raise RenderError(f"user template too long ({len(source)} > {MAX_USER_TEMPLATE_CHARS} chars)")
    token = _BUDGET.set(_Budget())
    try:
        return _bounded(_USER_ENV.from_string(source).generate(context))
    except RenderError:
        raise
    except SecurityError as exc:
        raise RenderError(f"user template refused: {exc}") from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise RenderError(f"user template error{where}: {exc}") from None
    except Exception as exc:  # untrusted input can raise anything (1/0, MemoryError ...)
        raise RenderError(f"user template failed: {type(exc).__name__}: {exc}") from None
    finally:
        _BUDGET.reset(token)
