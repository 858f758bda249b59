"""Rule preview over stored articles, on a migrated SQLite database (and
PostgreSQL when DATABASE_URL is set): answers, windows, the incremental
index, and a property test (index == plain scan) on random rules."""
import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from services import rules
from services.accounts.errors import Invalid
from services.accounts.subscriptions import MAX_QUERY_CHARS
from services.news import archive, preview as pv
from services.news.article import Article
from services.settings import Settings
from services.store.models import StoredArticle

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
SETTINGS = Settings(retention_days=90)


def put(store, at, items, source="wire"):
    """One poll storing `items`: (id, title, summary[, lang])."""
    articles = [Article(source, i[0], i[1], i[2], f"https://example.com/{i[0]}", None, i[3] if len(i) > 3 else None)
                for i in items]
    store.commit_poll(source=source, url="https://example.com/feed", etag=None, last_modified=None,
                      seen_ids=[a.id for a in articles], deliveries=[], now=at,
                      country_articles=[(a, ()) for a in articles])


def day(n, hour=12):
    return NOW - timedelta(days=n) + timedelta(hours=hour - 12)


CORPUS = [
    # (days ago, source, id, title, summary, lang)
    (1, "reuters", "en1", "Kazakhstan raises export tariffs on wheat",
     "The export duty on wheat rises to 10 percent, the ministry said.", None),
    (1, "reuters", "en2", "Oil pipeline attack halts CPC exports",
     "An attack near the Caspian Pipeline Consortium terminal stopped loading.", None),
    (2, "kursiv", "ru1", "Казахстан повысил экспортные пошлины",
     "Правительство Казахстана повысило пошлины на вывоз пшеницы.", "ru"),
    (3, "kun.uz", "uz1", "O‘zbekiston eksportga boj joriy qildi",
     "Oʻzbekiston hukumati bugʻdoy eksportiga boj joriy qildi.", "uz"),
    (3, "kun.uz", "uz2", "Ўзбекистон божхона тўловларини оширди",
     "Ўзбекистон импорт учун бож ставкаларини оширди.", "uz-Cyrl"),
    (4, "tengrinews", "kk1", "Қазақстан экспортқа баж салды",
     "Үкімет бидай экспортына баж енгізді.", "kk"),
    (5, "reuters", "en3", "Electricity tariffs rise in Almaty",
     "Household power tariffs rise from January.", None),
    (40, "reuters", "old", "Kazakhstan wheat harvest record",
     "Farmers in Kazakhstan said the wheat crop was a record.", None),
]


@pytest.fixture
def corpus(store):
    for days_ago, source, id_, title, summary, lang in CORPUS:
        put(store, day(days_ago), [(id_, title, summary, lang)], source=source)
    return store


def ids(answer):
    return [m["article"]["id"] for m in answer["matches"]]


# (query, days, ids newest first, terms of each, per_day)
CASES = [
    ("tariff", 30, ["en1", "en3"], [["tariff"], ["tariff"]], {"2026-11-20": 1, "2026-11-24": 1}),
    ("wheat", 30, ["en1"], [["wheat"]], {"2026-11-24": 1}),
    ("wheat", 90, ["en1", "old"], [["wheat"], ["wheat"]], {"2026-10-16": 1, "2026-11-24": 1}),
    ('"export duty"', 30, ["en1"], [["export duty"]], {"2026-11-24": 1}),
    ('"duty export"', 30, [], [], {}),
    ("export*", 30, ["en1", "en2"], [["export*"], ["export*"]], {"2026-11-24": 2}),
    ("tariff -electricity", 30, ["en1"], [["tariff"]], {"2026-11-24": 1}),
    ("title:wheat", 30, ["en1"], [["wheat"]], {"2026-11-24": 1}),
    ("summary:tariffs", 30, ["en3"], [["tariffs"]], {"2026-11-20": 1}),
    ("summary:attack NEAR/3 caspian", 30, ["en2"], [["attack", "caspian"]], {"2026-11-24": 1}),
    ("attack NEAR/2 caspian", 30, [], [], {}),
    ("title:attack NEAR/3 cpc", 30, ["en2"], [["attack", "cpc"]], {"2026-11-24": 1}),
    ("пошлина", 30, ["ru1"], [["пошлина"]], {"2026-11-23": 1}),
    ("пошлин*", 30, ["ru1"], [["пошлин*"]], {"2026-11-23": 1}),
    ("казахстан", 30, ["ru1"], [["казахстан"]], {"2026-11-23": 1}),
    ("o'zbekiston boj", 30, ["uz1"], [["o'zbekiston", "boj"]], {"2026-11-22": 1}),
    ("бож*", 30, ["uz2"], [["бож*"]], {"2026-11-22": 1}),
    ("баж", 30, ["kk1"], [["баж"]], {"2026-11-21": 1}),
    ("қазақстан", 30, ["kk1"], [["қазақстан"]], {"2026-11-21": 1}),
    ("lang:uz", 30, ["uz1", "uz2"], [[], []], {"2026-11-22": 2}),
    ("lang:en tariff", 30, ["en1", "en3"], [["tariff"], ["tariff"]], {"2026-11-20": 1, "2026-11-24": 1}),
    ("lang:ru", 30, ["ru1"], [[]], {"2026-11-23": 1}),  # kk and uz-Cyrl are marked, not inferred
    ('source:"kun.uz"', 30, ["uz1", "uz2"], [[], []], {"2026-11-22": 2}),
    ("source:reuters -export*", 30, ["en3"], [[]], {"2026-11-20": 1}),
    ("-tariff", 30, ["en2", "ru1", "uz1", "uz2", "kk1"], [[]] * 5,
     {"2026-11-21": 1, "2026-11-22": 2, "2026-11-23": 1, "2026-11-24": 1}),
    ("country:KZ", 30, ["en1", "ru1", "kk1", "en3"], None,
     {"2026-11-20": 1, "2026-11-21": 1, "2026-11-23": 1, "2026-11-24": 1}),
    ("topic:tariffs AND country:KZ", 30, ["en1", "ru1", "kk1"], None,
     {"2026-11-21": 1, "2026-11-23": 1, "2026-11-24": 1}),
    ("topic:tariffs", 30, ["en1", "ru1", "uz1", "uz2", "kk1"], None,
     {"2026-11-21": 1, "2026-11-22": 2, "2026-11-23": 1, "2026-11-24": 1}),
    ("nonexistentword", 30, [], [], {}),
]


@pytest.mark.parametrize("query,days,expected,terms,per_day", CASES, ids=[c[0] for c in CASES])
def test_preview_answers(corpus, query, days, expected, terms, per_day):
    answer = pv.preview(corpus, query, days, NOW, SETTINGS)
    assert set(answer) == {"matches", "per_day"}
    assert ids(answer) == expected
    if terms is not None:
        assert [m["terms"] for m in answer["matches"]] == terms
    assert answer["per_day"] == per_day
    # The same as the reference scan and as verifying every candidate.
    assert answer == pv.scan(corpus, query, days, NOW, SETTINGS)
    assert answer == pv.preview(corpus, query, days, NOW, SETTINGS, verify_all=True)


def test_terms_are_what_classify_reports(corpus):
    # Through a preset the terms are the preset's own, as evaluate gives them.
    answer = pv.preview(corpus, "topic:tariffs AND country:KZ", 30, NOW, SETTINGS)
    rule = rules.parse("topic:tariffs AND country:KZ")
    found = archive.fetch(corpus, [("reuters", "en1"), ("kursiv", "ru1"), ("tengrinews", "kk1")])
    for match in answer["matches"]:
        article = found[(match["article"]["source"], match["article"]["id"])]
        assert match["terms"] == rules.evaluate(rule, rules.Document.from_article(article)).terms()
        assert match["terms"]
    assert answer["matches"][0]["article"] == {
        "source": "reuters", "id": "en1", "title": "Kazakhstan raises export tariffs on wheat",
        "summary": "The export duty on wheat rises to 10 percent, the ministry said.",
        "link": "https://example.com/en1", "published": None, "first_seen": day(1).isoformat(), "language": None}


@pytest.mark.parametrize("query,message,column", [
    ("tariff OR (duty", "unbalanced parenthesis at column 11", 11),
    ('a "export duty', "unbalanced quote at column 3", 3),
    ("body:x", "unknown field 'body' (known: title, summary, source, lang, country, topic) at column 1", 1),
    ("topic:nope", "unknown topic 'nope' at column 1", 1),
    ("a NEAR b", "NEAR needs a distance, like NEAR/5 at column 3", 3),
])
def test_a_bad_query_is_invalid_like_rules_check(corpus, query, message, column):
    with pytest.raises(rules.RuleError) as parsed:
        rules.parse(query)
    with pytest.raises(Invalid) as exc:
        pv.preview(corpus, query, 30, NOW, SETTINGS)
    assert exc.value.message == message == str(parsed.value)
    assert exc.value.field == "query" and exc.value.extra == {"column": column}


@pytest.mark.parametrize("query", ["", "   ", None, 5, "x" * (MAX_QUERY_CHARS + 1),
                                   " OR ".join(f"w{i}" for i in range(120))])
def test_empty_long_or_complex_queries_are_invalid(corpus, query):
    with pytest.raises(Invalid) as exc:
        pv.preview(corpus, query, 30, NOW, SETTINGS)
    assert exc.value.field == "query"


@pytest.mark.parametrize("days", [0, -1, 91, True, 1.5, "30", None])
def test_days_must_be_within_retention(corpus, days):
    with pytest.raises(Invalid) as exc:
        pv.preview(corpus, "wheat", days, NOW, SETTINGS)
    assert exc.value.field == "days" and "90" in exc.value.message


# (first seen relative to the window start NOW - 7 days, in the window?)
EDGES = [(-US, False), (timedelta(0), True), (US, True), (timedelta(days=7), True),  # = NOW
         (timedelta(days=7) + US, False)]                                         # after NOW


@pytest.mark.parametrize("offset,inside", EDGES)
def test_window_edges(store, offset, inside):
    put(store, NOW - timedelta(days=7) + offset, [("e", "Edge wheat", "")])
    answer = pv.preview(store, "wheat", 7, NOW, SETTINGS)
    assert ids(answer) == (["e"] if inside else [])
    assert answer == pv.scan(store, "wheat", 7, NOW, SETTINGS)


def test_per_day_counts_by_utc_day_of_first_seen(store):
    start = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)
    for n, at in enumerate([start, start + timedelta(hours=23, minutes=59, seconds=59), start + timedelta(days=1),
                            start + timedelta(days=3, hours=5)]):
        put(store, at, [(f"d{n}", "Wheat", "")])
    # A time zone other than UTC does not move an article to another day.
    now = datetime(2026, 11, 25, 5, 0, tzinfo=timezone(timedelta(hours=5)))
    answer = pv.preview(store, "wheat", 30, now, SETTINGS)
    assert answer["per_day"] == {"2026-11-20": 2, "2026-11-21": 1, "2026-11-23": 1}
    assert list(answer["per_day"]) == sorted(answer["per_day"])
    assert ids(answer) == ["d3", "d2", "d1", "d0"]


def test_matches_are_capped_but_per_day_counts_them_all(store):
    for d in range(3):
        put(store, day(d + 1), [(f"w{d}-{i:02}", "Wheat exports", "") for i in range(60)])
    answer = pv.preview(store, "wheat", 30, NOW, SETTINGS)
    assert len(answer["matches"]) == pv.MAX_MATCHES == 100
    assert sum(answer["per_day"].values()) == 180
    # Newest first; one poll's articles (same first_seen) by source, then id.
    assert ids(answer) == [f"w0-{i:02}" for i in range(60)] + [f"w1-{i:02}" for i in range(40)]
    assert answer == pv.scan(store, "wheat", 30, NOW, SETTINGS)
    assert len(pv.preview(store, "wheat", 30, NOW, SETTINGS, limit=7)["matches"]) == 7


@pytest.mark.parametrize("compact", [False, True])
def test_the_index_refreshes_with_new_articles(corpus, compact):
    index = pv.index_for(corpus)
    if compact:
        index.min_delta = 0  # compact on every refresh
    assert ids(pv.preview(corpus, "wheat", 30, NOW, SETTINGS)) == ["en1"]
    put(corpus, NOW - timedelta(minutes=5), [("new1", "Wheat exports resume", "Kazakhstan said.")])
    put(corpus, NOW, [("new2", "Ещё пошлины на пшеницу", "", "ru")], source="kursiv")
    assert ids(pv.preview(corpus, "wheat", 30, NOW, SETTINGS)) == ["new1", "en1"]
    assert ids(pv.preview(corpus, "пошлины", 30, NOW, SETTINGS)) == ["new2", "ru1"]
    # Only the new articles were read and tokenised again.
    assert index.stats["added"] == len(CORPUS) + 2
    assert index.stats["resyncs"] == 0
    if compact:
        assert index.stats["compactions"] >= 2


def test_a_late_commit_is_found_by_the_count_check(corpus):
    index = pv.index_for(corpus)
    assert ids(pv.preview(corpus, "wheat", 30, NOW, SETTINGS)) == ["en1"]
    # Stored "10 days ago" but committed now: before what a refresh reads again.
    put(corpus, day(10), [("late", "Wheat late", "")])
    answer = pv.preview(corpus, "wheat", 30, NOW, SETTINGS)
    assert ids(answer) == ["en1", "late"] and answer["per_day"] == {"2026-11-15": 1, "2026-11-24": 1}
    assert index.stats["resyncs"] == 1
    assert answer == pv.scan(corpus, "wheat", 30, NOW, SETTINGS)


def test_a_deleted_row_is_noticed(corpus):
    index = pv.index_for(corpus)
    assert ids(pv.preview(corpus, "wheat OR tariff", 30, NOW, SETTINGS)) == ["en1", "en3"]
    with corpus.sessions.begin() as s:
        s.execute(sa.delete(StoredArticle).where(StoredArticle.article_id == "en1"))
    answer = pv.preview(corpus, "wheat OR tariff", 30, NOW, SETTINGS)
    assert ids(answer) == ["en3"] and answer["per_day"] == {"2026-11-20": 1}
    assert index.stats["resyncs"] == 1


def test_the_periodic_resync_catches_what_the_count_cannot(corpus):
    # One row in, one row out: the count is the same; the hourly re-sync by
    # keys still sees both.
    index = pv.index_for(corpus)
    assert ids(pv.preview(corpus, "wheat", 30, NOW, SETTINGS)) == ["en1"]
    put(corpus, day(10), [("late", "Wheat late", "")])
    with corpus.sessions.begin() as s:
        s.execute(sa.delete(StoredArticle).where(StoredArticle.article_id == "en1"))
    # Until then the answer is stale: en1 is read back for listing, found
    # gone and dropped; "late" is not in the index yet.
    assert pv.preview(corpus, "wheat", 30, NOW, SETTINGS) == {"matches": [], "per_day": {}}
    index.resync_every = 0
    answer = pv.preview(corpus, "wheat", 30, NOW, SETTINGS)
    assert ids(answer) == ["late"] and answer["per_day"] == {"2026-11-15": 1}
    assert answer == pv.scan(corpus, "wheat", 30, NOW, SETTINGS)


def test_expired_articles_leave_the_window_and_retention_purges_them(corpus):
    assert ids(pv.preview(corpus, "wheat", 90, NOW, SETTINGS)) == ["en1", "old"]
    # 60 days later: "old" (40 days) is 100 days old, past retention; en1 is 61.
    later = NOW + timedelta(days=60)
    assert ids(pv.preview(corpus, "wheat", 90, later, SETTINGS)) == ["en1"]
    assert ids(pv.preview(corpus, "wheat", 30, later, SETTINGS)) == []
    assert archive.purge(corpus, later, 90) == 1
    index = pv.index_for(corpus)
    index.min_delta = 0
    assert ids(pv.preview(corpus, "wheat", 90, later, SETTINGS)) == ["en1"]
    assert ("reuters", "old") not in index.key_num  # compacted away
    # Going back in time reads what the window needs again (what is left).
    assert ids(pv.preview(corpus, "wheat", 90, NOW, SETTINGS)) == ["en1"]
    assert pv.preview(corpus, "tariff", 30, NOW, SETTINGS) == pv.scan(corpus, "tariff", 30, NOW, SETTINGS)


def test_a_shorter_retention_narrows_the_days_allowed(corpus):
    short = Settings(retention_days=3)
    assert ids(pv.preview(corpus, "tariff OR boj", 3, NOW, short)) == ["en1", "uz1"]
    with pytest.raises(Invalid):
        pv.preview(corpus, "tariff", 4, NOW, short)


def test_an_empty_store(store):
    assert pv.preview(store, "wheat OR -wheat", 30, NOW, SETTINGS) == {"matches": [], "per_day": {}}


# --- property: the index gives exactly what a plain scan gives ----------------------

WORDS = ["wheat", "wheats", "export", "exports", "exported", "duty", "duties", "tariff", "tariffs", "oil",
         "pipeline", "attack", "kazakhstan", "almaty", "tenge", "said", "пошлина", "пошлины", "нефть",
         "казахстан", "o'zbekiston", "boj", "баж", "қазақстан", "electricity", "ban", "import", "10"]
SOURCES = ["reuters", "kursiv", "kun.uz"]
LANGS = [None, None, "en", "ru", "uz", "kk"]


def random_corpus(seed: int, n: int = 60):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        title = " ".join(rng.choices(WORDS, k=rng.randint(1, 5))).capitalize()
        summary = ", ".join(" ".join(rng.choices(WORDS, k=rng.randint(0, 6))) for _ in range(rng.randint(1, 3)))
        at = NOW - timedelta(days=rng.randint(0, 45), hours=rng.randint(0, 23))
        out.append((at, rng.choice(SOURCES), f"r{i}", title, summary, rng.choice(LANGS)))
    return out


word = st.sampled_from(WORDS + ["missing", "export-duty"])
leaf = st.one_of(
    word,
    word.map(lambda w: w[:3] + "*" if "-" not in w else "exp*"),
    st.tuples(word, word).map(lambda p: f'"{p[0]} {p[1]}"'),
    word.map(lambda w: f'"{w}"'),
)
field_leaf = st.one_of(leaf, st.tuples(st.sampled_from(["title:", "summary:"]), leaf).map("".join))
near = st.tuples(field_leaf, st.integers(1, 4), field_leaf).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}")
meta = st.sampled_from(["source:reuters", 'source:"kun.uz"', "lang:ru", "lang:en", "lang:uz", "lang:kk",
                        "topic:tariffs", "country:KZ", "country:UZ"])
atom = st.one_of(field_leaf, field_leaf, near, meta)


def combine(children):
    return st.one_of(
        st.tuples(children, children).map(lambda p: f"({p[0]} {p[1]})"),
        st.tuples(children, children).map(lambda p: f"({p[0]} OR {p[1]})"),
        children.map(lambda c: f"-({c})"),
        children.map(lambda c: f"NOT {c}"),
        st.tuples(st.sampled_from(["title:", "summary:"]), children).map(lambda p: f"{p[0]}({p[1]})"),
    )


queries = st.recursive(atom, combine, max_leaves=6)


@pytest.mark.parametrize("compact", [False, True])
@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries, days=st.sampled_from([1, 7, 30, 90]), limit=st.sampled_from([3, 100]))
def test_index_equals_a_full_scan(store, compact, query, days, limit):
    if not archive.count_since(store, NOW - timedelta(days=100)):
        for at, source, id_, title, summary, lang in random_corpus(7):
            put(store, at, [(id_, title, summary, lang)], source=source)
        if compact:
            pv.index_for(store).min_delta = 0
    try:
        rules.parse(query)
    except rules.RuleError:
        with pytest.raises(Invalid):
            pv.preview(store, query, days, NOW, SETTINGS)
        return
    expected = pv.scan(store, query, days, NOW, SETTINGS, limit=limit)
    assert pv.preview(store, query, days, NOW, SETTINGS, limit=limit) == expected
    assert pv.preview(store, query, days, NOW, SETTINGS, limit=limit, verify_all=True) == expected
