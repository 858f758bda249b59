import json
import os
import subprocess
import sys
from pathlib import Path

from services.relevance import features as F

ROOT = Path(__file__).resolve().parents[3]

ARTICLE = {"title": "O‘zbekiston bojxona to'lovlarini oshirdi",
           "summary": "Qozogʻiston esa import bojlarini o`zgartirmadi. Курс тенге ослаб."}


def test_apostrophes_fold_to_one_form():
    forms = ["o'zbekiston", "o‘zbekiston", "o’zbekiston", "o`zbekiston", "oʻzbekiston", "oʼzbekiston"]
    assert {tuple(F.words(f)) for f in forms} == {("o'zbekiston",)}
    vecs = [F.vectorise({"title": "Bank of " + f.upper(), "summary": "so" + f[1] + "m"}) for f in forms]
    assert all(v == vecs[0] for v in vecs)


def test_normalisation_casefold_nfkc_yo():
    assert F.words("ТАРИФЫ Ёлка ﬁx") == ["тарифы", "елка", "fix"]
    assert F.words("'quoted' Kazakhstan's co-op") == ["quoted", "kazakhstan's", "co", "op"]


def test_feature_kinds():
    names = F.feature_names({"title": "Bojxona toʻlovi", "summary": ""})
    assert "w:bojxona" in names and "b:bojxona to'lovi" in names
    assert "c:<bo" in names and "c:ona>" in names and "c:xona>" in names
    assert all(len(n) - 2 in (3, 4, 5) for n in names if n.startswith("c:"))
    # no bigram across title and summary
    names = F.feature_names({"title": "alpha", "summary": "beta"})
    assert "b:alpha beta" not in names


def test_vector_is_unit_length_and_sorted():
    vec = F.vectorise(ARTICLE)
    assert abs(sum(v * v for v in vec.values()) - 1.0) < 1e-12
    assert list(vec) == sorted(vec)
    assert all(0 <= fid < F.DIM for fid in vec)
    assert F.vectorise({"title": "", "summary": ""}) == {}


def test_vector_ids_are_the_hashed_feature_names():
    # vector_ids builds from slots cached per word plus the pairs' hashes
    # (slot_bytes); feature_names (what explanations read) must name exactly
    # those slots.
    for article in (ARTICLE, {"title": "Тенге ослаб", "summary": "Нацбанк продал доллары. Курс тенге упал."},
                    {"title": "Пошлина", "summary": ""}, {"title": "", "summary": "a b a b"}):
        assert F.vector_ids(article) == {F.feature_id(n) for n in F.feature_names(article)}
        vec = F.vectorise(article)
        assert set(vec) == F.vector_ids(article)
        assert len(set(vec.values())) == 1  # binary: every slot worth 1/sqrt(n)


def test_hash_is_stable_across_processes():
    """The same text gives the same ids in a process with another hash seed."""
    code = ("import json,sys; from services.relevance import features as F; "
            "a=json.loads(sys.argv[1]); print(json.dumps(sorted(F.vectorise(a).items())))")
    outs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        res = subprocess.run([sys.executable, "-c", code, json.dumps(ARTICLE)], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        outs.append(json.loads(res.stdout))
    here = json.loads(json.dumps(sorted(F.vectorise(ARTICLE).items())))
    assert outs[0] == outs[1] == here


def test_known_hash_values():
    # Pinned: a change here invalidates every shipped model file.
    assert F.HASH_BITS == 20
    assert F.feature_id("w:tariff") == F.feature_id("w:tariff")
    assert F.HASH == "crc32"
    # The standard CRC-32 check value: CRC-32("123456789") = 0xCBF43926.
    assert F.feature_id("123456789") == 0xCBF43926 % (1 << 20)
    import binascii
    for name in ("w:tariff", "c:<boj", "b:exchange rate", "w:o'zbekiston", "c:қаз"):
        assert F.feature_id(name) == binascii.crc32(name.encode("utf-8")) % (1 << 20)


def test_readable():
    assert F.readable("w:tariff") == "tariff"
    assert F.readable("b:exchange rate") == '"exchange rate"'
    assert F.readable("c:<boj") == "boj*"
    assert F.readable("c:nda>") == "*nda"
    assert F.readable("c:ston") == "*ston*"
    assert F.readable("c:<so'm>") == "so'm"
