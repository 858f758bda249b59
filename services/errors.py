"""The one base of tulpar's own errors, and the error the commands share.

Every error we raise on purpose derives from `TulparError`, so a caller can
tell "tulpar refused this" from a bug with one `except`. Each error keeps the
built-in base it always had as well (most are ValueErrors: a bad value), so
code that catches `ValueError` still catches them. Each name is defined once:

    services.config.ConfigError              a config file that cannot be used
    services.yamlfile.YamlError              a YAML file refused or unreadable
    services.rules.errors.RuleError          a news rule (query) that does not parse
    services.rules.errors.PresetError        a preset file that cannot be used
    services.fx.rules.FxRuleError            an FX alert rule that cannot be used
    services.fx.pairs.PairError              not a currency pair
    services.fx.sources.common.RateFormatError / RateConfigError
    services.net.fetch.SourceError           a source that could not be fetched
    services.delivery.channels.errors.DeliveryError (RetryableError, PermanentError)
    services.render.RenderError              a template that cannot be rendered
    services.polling.UnknownSourceKind       a source kind no pipeline polls
    services.polling.LostRace                another poll committed the same items first
    InputError (below)                       bad input to a command
"""
from __future__ import annotations


class TulparError(Exception):
    """Base of the errors tulpar raises on purpose; `str()` is the message
    people see."""


class InputError(TulparError):
    """Bad input to a command (a rules file, an articles or rates file): the
    command prints `tulpar COMMAND: ` and the message as is, and exits 2."""
