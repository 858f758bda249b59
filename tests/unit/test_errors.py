"""Every error tulpar raises on purpose shares one base, keeps the built-in base
callers catch it by, and has a name of its own."""
from __future__ import annotations

import pytest

from services.config import ConfigError
from services.delivery.channels.errors import DeliveryError, PermanentError, RetryableError
from services.render import RenderError
from services.errors import InputError, TulparError
from services.fx.pairs import PairError
from services.fx.rules import FxRuleError
from services.fx.sources.common import RateConfigError, RateFormatError
from services.net.fetch import SourceError
from services.rules.errors import PresetError, RuleError
from services.yamlfile import YamlError

# (class, whether it is also a ValueError: callers that catch ValueError rely on it)
ERRORS = [
    (ConfigError, True),
    (YamlError, True),
    (RuleError, True),
    (PresetError, True),
    (FxRuleError, True),
    (PairError, True),
    (RateFormatError, True),
    (RateConfigError, True),
    (SourceError, False),
    (DeliveryError, False),
    (RetryableError, False),
    (PermanentError, False),
    (InputError, False),
    (RenderError, False),
]


@pytest.mark.parametrize("error, is_value_error", ERRORS, ids=[e.__name__ for e, _ in ERRORS])
def test_one_base_and_the_old_one_kept(error, is_value_error):
    assert issubclass(error, TulparError)
    assert issubclass(error, ValueError) is is_value_error


def test_each_name_is_defined_once():
    names = [error.__name__ for error, _ in ERRORS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("error, text", [
    (ConfigError("c.yaml", 3, "sources[0].url", "bad"), "c.yaml:3: sources[0].url: bad"),
    (ConfigError("c.yaml", None, "", "bad"), "c.yaml: bad"),
    (YamlError("r.yaml", 2, "not valid YAML"), "r.yaml:2: not valid YAML"),
    (RuleError("unbalanced quote", 4), "unbalanced quote at column 4"),
    (FxRuleError("rule 'a': has no pair"), "rule 'a': has no pair"),
    (SourceError("https://x.test/feed", "timed out after 5s"), "https://x.test/feed: timed out after 5s"),
    (DeliveryError("refused", target="https://hooks.test/x"), "refused [https://hooks.test/x]"),
    (InputError("rules.yaml: rule 1: duplicate name"), "rules.yaml: rule 1: duplicate name"),
])
def test_messages_are_unchanged_by_the_base(error, text):
    assert str(error) == text


def test_fx_rule_error_names_its_key():
    assert FxRuleError("rule 'a': direction 'x' is not one of up, down, any", "direction").key == "direction"
