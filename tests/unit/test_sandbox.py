"""The user-template sandbox: ordinary templates render as stock Jinja would,
and every bomb stops fast, small and as a RenderError naming the refusal."""
from __future__ import annotations

import time
import tracemalloc

import pytest

from services import sandbox
from services.render import RenderError

EVIDENCE = [{"field": "title", "term": "tenge", "start": 0, "end": 5},
            {"field": "summary", "term": "нефть", "start": 12, "end": 17},
            {"field": "summary", "term": "kzt", "start": 30, "end": 33}]
FEED = {"title": "Tenge firms as oil climbs", "evidence": EVIDENCE,
        "terms": ["tenge", "нефть", "kzt"], "rate": 512.3456}


@pytest.mark.parametrize("source, context, expected", [
    ("Alert: {{ title }}", {"title": "Тенге"}, "Alert: Тенге"),
    ("{{ title | upper }} ({{ terms | join(', ') }})", {"title": "oil", "terms": ["a", "b"]},
     "OIL (a, b)"),
    ("{{ '-' * 3 }}{{ 2 ** 10 }}", {}, "---1024"),
    ("{% for i in range(3) %}{{ i }}{% endfor %}", {}, "012"),
    ("{{ title }}", {"title": "<b>"}, "<b>"),  # plain text out: escaping is the caller's call
    # Ordinary templates touch every guarded hook and come out as stock jinja renders them.
    ("{% for e in evidence %}{{ loop.index }}. {{ e.term|upper }} in {{ e.field }}"
     "{{ ', ' if not loop.last }}{% endfor %}", FEED,
     "1. TENGE in title, 2. НЕФТЬ in summary, 3. KZT in summary"),
    ("{{ evidence|map(attribute='term')|join(' / ') }}|{{ evidence|join(',', attribute='field') }}",
     FEED, "tenge / нефть / kzt|title,summary,summary"),
    ("{{ title|center(31) }}|{{ title|truncate(12, True, '…', 0) }}|{{ title|wordwrap(10) }}",
     FEED, "   Tenge firms as oil climbs   |Tenge firms…|Tenge\nfirms as\noil climbs"),
    ("{{ 'a\nb'|indent(2, true) }}|{{ title|replace('oil', 'нефть') }}|"
     "{{ title.replace('a', 'A', 1) }}", FEED,
     "  a\n  b|Tenge firms as нефть climbs|Tenge firms As oil climbs"),
    ("{{ '%-8s|%6.2f'|format('rate', rate) }}|{{ '{:>9.1f}|{:<4}'.format(rate, 'x') }}|"
     "{{ '%05d' % 42 }}", FEED, "rate    |512.35|    512.3|x   |00042"),
    ("{{ terms|batch(2)|list }}|{{ terms|slice(2)|list }}|{{ (terms + ['usd'])|sort|join(',') }}",
     FEED, "[['tenge', 'нефть'], ['kzt']]|[['tenge', 'нефть'], ['kzt']]|kzt,tenge,usd,нефть"),
    ("{{ evidence|sum(attribute='end') }}|"
     "{{ evidence|selectattr('field', 'eq', 'summary')|list|length }}|{{ range(3)|list }}",
     FEED, "55|2|[0, 1, 2]"),
    ("{% set ns = namespace(n=0) %}{% for e in evidence if e.field == 'summary' %}"
     "{% set ns.n = ns.n + e.end - e.start %}{% endfor %}{{ ns.n }}", FEED, "8"),
    ("{{ 'x'.ljust(4, '.') ~ 'y'.rjust(3) ~ '7'.zfill(3) ~ 'a\tb'.expandtabs(4) }}|"
     "{{ ', '.join(terms) }}", FEED, "x...  y007a   b|tenge, нефть, kzt"),
    ("{% for a, b in [('kzt', 1), ('uzs', 2)] %}{{ a ~ '=' ~ b }};{% endfor %}"
     "{{ {'k': [1, 2]}['k'] }}|{{ ('-' * 5) + '>' }}", FEED, "kzt=1;uzs=2;[1, 2]|----->"),
    ("{% for row in terms|batch(2, '-') %}[{% for c in row %}{{ c }}{% endfor %}]"
     "{% else %}none{% endfor %}|{{ terms|first|title }}", FEED, "[tengeнефть][kzt-]|Tenge"),
])
def test_user_template_renders(source, context, expected):
    assert sandbox.user_template(source, context) == expected


@pytest.mark.parametrize("source, match", [
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ("{{ cycler.__init__.__globals__ }}", "unsafe|undefined"),
    ("{{ title.__class__ }}", "unsafe"),
    ("{{ f.__globals__ }}", "unsafe"),
    ("{{ range(10**9) | list }}", "range too big"),
    ("{% for i in range(1001) %}{% endfor %}", "range too big"),
    ("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", "output too long"),
    ("{{ 'x' * 1000000000 }}", "repetition too large"),
    ("{{ 2 ** 100000 }}", "exponent too large"),
    ("{{ (10 ** 60) ** 60 }}", "exponent too large"),
    ("{{ missing }}", "undefined"),
    ("{% if %}", r"line 1"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
])
def test_user_template_refusals_are_render_errors(source, match):
    with pytest.raises(RenderError, match=match):
        sandbox.user_template(source, {"title": "t", "f": lambda: None})


def test_user_template_length_is_limited():
    with pytest.raises(RenderError, match="too long"):
        sandbox.user_template("x" * (sandbox.MAX_USER_TEMPLATE_CHARS + 1), {})


NESTED_3 = "{% for a in X %}{% for b in X %}{% for c in X %}{% endfor %}{% endfor %}{% endfor %}"
TEN_ZEROS = "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"
BOMBS = [
    # (template, context, what the refusal names)
    ('{{ "x"|center(10 ** 9) }}', {}, "center width"),
    ('{{ "x".center(10 ** 9) }}', {}, "str.center width"),
    ('{{ "x".ljust(999999999, "-") }}', {}, "str.ljust width"),
    ('{{ "7".zfill(999999999) }}', {}, "str.zfill width"),
    ('{{ ("\t" * 1000).expandtabs(10 ** 5) }}', {}, "str.expandtabs result"),
    ('{{ "{:>999999999}".format(1) }}', {}, "str.format: width"),
    ('{{ "{:.{}f}".format(1.5, 10 ** 9) }}', {}, "nested field"),
    ('{{ ("{0}" * 3000).format("x" * 30000) }}', {}, "str.format field"),
    ('{{ "%999999999d" % 1 }}', {}, "% formatting: width"),
    ('{{ ("%(a)s" * 3000) % {"a": "x" * 30000} }}', {}, "% formatting result"),
    ('{{ "%.999999999f"|format(1.5) }}', {}, "format filter: width"),
    ('{{ "%*d"|format(10 ** 9, 1) }}', {}, "'\\*' width"),
    ('{{ "a\nb"|indent(10 ** 9) }}', {}, "indent width"),
    ('{{ ("a\n" * 50000)|indent("-" * 50000) }}', {}, "indent result"),
    ('{{ ("ab " * 30000)|wordwrap(1, wrapstring="-" * 50000) }}', {}, "wordwrap result"),
    ('{{ "x"|truncate(10 ** 9) }}', {}, "truncate length"),
    ('{{ (["x" * 1000] * 90)|join("-" * 1000) }}', {}, "join result"),
    ('{{ ("-" * 1000).join(["x" * 1000] * 90) }}', {}, "str.join result"),
    ('{{ ("x" * 100000).replace("x", "yy") }}', {}, "str.replace result"),
    ('{{ ("x" * 50000)|replace("", "y" * 9) }}', {}, "replace result"),
    ('{{ [1]|batch(10 ** 9, fill_with=0)|list }}', {}, "batch linecount"),
    ('{{ [1]|slice(10 ** 9)|list }}', {}, "slice slices"),
    ("{{ lazy|list }}", {"lazy": range(10 ** 9)}, "list too large"),
    ('{{ ["ab"] * 50000 }}', {}, "repetition too large"),
    ('{{ "x" * 100000 ~ "y" }}', {}, "joined with ~ too large"),
    ("{{ 2 ** 64 ** 64 }}", {}, "exponent too large"),
    ("{% set n = 10 ** 1000 %}{{ n * n }}", {}, "product too large"),
    ("{% set a = ['0123456789'] %}" + "{% set a = [a, a] %}" * 40 + "{{ a }}", {},
     "list too large"),
    ("{% set n = namespace(a='0123456789') %}" + "{% set n = namespace(a=n, b=n) %}" * 40,
     {}, "too large"),
    ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}", {}, "joined with ~ too large"),
    ("".join('{%% set v%d = "x"|center(99999) %%}' % i for i in range(12)), {}, "in all"),
    ('{{ (1).to_bytes(10 ** 9, "big") }}', {}, "to_bytes"),
    ('{{ "a".translate({97: "x" * 1000}) }}', {}, "translate"),
    ("{{ [[0] * 1000] * 20|sum(start=[]) }}", {}, "start must be a number"),
    ("{{ lipsum(10 ** 6) }}", {}, "lipsum"),
    # Nothing printed, nothing built: only the clock stops these.
    (NESTED_3.replace("X", "range(1000)"), {}, "longer than 1 s"),
    (NESTED_3.replace("X", "xs"), {"xs": list(range(1000))}, "longer than 1 s"),
    ("{% set z = " + TEN_ZEROS + " %}" + "{% for a in z %}" * 10 + "{% endfor %}" * 10, {},
     "longer than 1 s"),
    ("{% macro spin() %}{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}"
     "{% endfor %}{% endmacro %}{% for a in range(1000) %}{{ spin() }}{% endfor %}", {},
     "longer than 1 s"),
]


@pytest.mark.parametrize("source, context, match", BOMBS)
def test_user_template_bombs_stop_fast_and_small(source, context, match):
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(RenderError, match=match):
            sandbox.user_template(source, context)
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert took < 1.8
    assert peak < 16 * 2**20
