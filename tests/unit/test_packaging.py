"""`pip install .` outside the checkout: the wheel carries the templates and
presets, and an installed copy renders alerts from its own templates.

The checkout is copied first (its git-visible files, as a clone would have
them): building in place would write build/ and *.egg-info into a tree other
people are working in. The chain is a release's: sdist, a wheel built from
that sdist, then `pip install --target` of the wheel.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from services import settings as settings_mod

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Тенге укрепился: \"KZT\" at 470"


def checkout_files(*top: str) -> set[str]:
    """Files under the checkout's `top` folders, as posix paths relative to ROOT."""
    return {p.relative_to(ROOT).as_posix() for t in top for p in (ROOT / t).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{cmd[:4]}... failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("packaging")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    src = work / "src"
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # listed but deleted in the work tree: gone
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    sdist = work / "sdist" / run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
                               "print(build_meta.build_sdist(sys.argv[1]))", str(work / "sdist")],
        cwd=src).stdout.strip().splitlines()[-1]
    # --no-index: never the network, so the build uses this environment's setuptools.
    assert importlib.util.find_spec("setuptools.command.bdist_wheel"), (
        "this setuptools cannot build wheels: install the [test] extra (setuptools>=70.1), e.g. `make venv`")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(work / "dist"), str(sdist)])
    (wheel,) = (work / "dist").glob("tulpar-*.whl")
    site = work / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
         "--target", str(site), str(wheel)])
    return {"sdist": sdist, "wheel": wheel, "site": site, "work": work}


def archive_names(built, kind: str) -> set[str]:
    if kind == "wheel":
        return set(zipfile.ZipFile(built["wheel"]).namelist())
    with tarfile.open(built["sdist"]) as tar:  # names start with tulpar-VERSION/
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}


@pytest.mark.parametrize("kind, templates_at", [
    ("wheel", "services/templates/"),  # inside the package: where settings.py looks
    ("sdist", "templates/"),  # the source layout, from which the wheel is built
])
def test_archives_carry_templates_presets_and_every_module(built, kind, templates_at):
    names = archive_names(built, kind)
    templates = {templates_at + name.removeprefix("templates/") for name in checkout_files("templates")}
    presets = {n for n in checkout_files("services/rules/presets") if n.endswith(".yaml")}
    # The packages are listed by hand in pyproject.toml: a new one left out
    # would be missing from the wheel.
    modules = {n for n in checkout_files("services", "workers") if n.endswith(".py")}
    assert templates and presets and modules
    assert templates - names == set()
    assert presets - names == set()
    assert modules - names == set()
    # The migrations `tulpar db upgrade` runs (modules, checked above) and
    # the template new ones are written from.
    assert {"services/store/migrations/env.py", "services/store/migrations/versions/0001_baseline.py",
            "services/store/migrations/script.py.mako"} - names == set()
    if kind == "wheel":
        # Nothing lands at the top of site-packages but our two packages.
        assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"services", "workers"}


# Runs with -I -S: no PYTHONPATH, no working directory and no .pth files on
# sys.path (the checkout's editable install is one), so `services` can only
# come from the installed wheel; the dependencies come from the test's own
# site-packages, appended.
CHILD = r"""
import json, sys
site, deps, title = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path[:0] = [site]
sys.path += deps
from datetime import datetime, timezone
import services
from services import render
from services.news.article import Article
from services.rules.presets import default_presets
from services.settings import Settings

article = Article(source="tengrinews", id="a-1", title=title, summary="The KZT held.",
                  link="https://news.example/a/1", lang="ru")
now = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
settings = Settings()
print(json.dumps({
    "services": services.__file__,
    "templates_dir": str(settings.templates_dir),
    "var_dir": str(settings.var_dir),
    "config": str(settings.config),
    "presets": [str(p.path) for p in default_presets()],
    "email": render.alert_email(article, "KZ money", [], now=now),
    "webhook": render.alert_webhook(article, "KZ money", [], now=now),
}))
"""


def run_installed(built, cwd: Path, **env: str) -> dict:
    deps = [p for p in sys.path if p and Path(p).is_dir() and not (Path(p) / "services").exists()]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TULPAR_", "PYTHON"))} | env
    done = run([sys.executable, "-I", "-S", "-c", CHILD, str(built["site"]), json.dumps(deps), TITLE],
               cwd=cwd, env=environ)
    return json.loads(done.stdout)


@pytest.mark.parametrize("override, subject", [
    (None, f"[KZ money] {TITLE}"),  # the templates installed with the wheel
    ("custom", f"custom: {TITLE}"),  # TULPAR_TEMPLATES_DIR still wins
])
def test_installed_wheel_renders_alerts_outside_the_checkout(built, tmp_path, override, subject):
    site = built["site"]
    env = {}
    expected_dir = site / "services" / "templates"
    if override:
        expected_dir = tmp_path / override
        shutil.copytree(site / "services" / "templates", expected_dir)
        (expected_dir / "email" / "alert" / "subject.txt").write_text("custom: {{ article.title }}\n")
        env["TULPAR_TEMPLATES_DIR"] = str(expected_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run_installed(built, elsewhere, **env)
    assert Path(out["services"]).is_relative_to(site)  # the wheel, not the checkout
    assert Path(out["templates_dir"]) == expected_dir
    assert out["email"]["subject"] == subject
    assert TITLE in out["email"]["text"]
    assert "Тенге укрепился" in out["email"]["html"]
    assert out["webhook"]["article"]["title"] == TITLE
    # The presets load from the installed copy, every one of them (one file
    # each under topics/ and countries/; they also read shared.yaml's clauses,
    # so it is in the wheel too, or none would load).
    preset_files = [n for n in checkout_files("services/rules/presets")
                    if n.endswith(".yaml") and Path(n).parent.name in ("topics", "countries")]
    assert len(out["presets"]) == len(preset_files)
    assert all(Path(p).is_relative_to(site) for p in out["presets"])
    # var/ and config/ are the working directory's for an installed copy, never site-packages.
    assert (Path(out["var_dir"]), Path(out["config"])) == (elsewhere / "var", elsewhere / "config" / "demo.yaml")


def test_a_checkout_uses_its_own_top_level_folders(monkeypatch):
    for name in ("TULPAR_TEMPLATES_DIR", "TULPAR_VAR_DIR", "TULPAR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_mod.Settings()
    assert not settings_mod.INSTALLED
    assert (settings.templates_dir, settings.var_dir, settings.config) == (
        ROOT / "templates", ROOT / "var", ROOT / "config" / "demo.yaml")


MIGRATE = r"""
import json, sys
site, deps, url = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path[:0] = [site]
sys.path += deps
from services.store import schema
done = schema.upgrade(url)
print(json.dumps({"schema": schema.__file__, "migrations": str(schema.MIGRATIONS),
                  "said": done.describe("db"), "current": schema.current_revision(url)}))
"""


def test_installed_wheel_migrates_a_database_outside_the_checkout(built, tmp_path):
    deps = [p for p in sys.path if p and Path(p).is_dir() and not (Path(p) / "services").exists()]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TULPAR_", "PYTHON"))}
    url = f"sqlite:///{tmp_path / 'tulpar.db'}"
    done = run([sys.executable, "-I", "-S", "-c", MIGRATE, str(built["site"]), json.dumps(deps), url],
               cwd=tmp_path, env=environ)
    out = json.loads(done.stdout)
    assert Path(out["schema"]).is_relative_to(built["site"])  # the wheel's code and migrations
    assert Path(out["migrations"]).is_relative_to(built["site"])
    from services.store import schema
    head = schema.head_revision()
    assert (out["said"], out["current"]) == (f"db: created at {head}", head)
