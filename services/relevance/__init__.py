"""A small learned relevance model that a topic preset may use to veto or
confirm its keyword match (see docs/relevance.md).

    from services.relevance import Model, decide, load_model
    model = load_model("topic:fx")            # the shipped file, or None
    decision = decide(rule_matched, model.score(article), low, high, ...)
"""
from services.relevance.combine import Decision, Thresholds, decide, judge
from services.relevance.model import Model, TrainConfig, train
from services.relevance.store import MODELS_DIR, load_model, model_path

__all__ = ["Decision", "MODELS_DIR", "Model", "Thresholds", "TrainConfig", "decide", "judge",
           "load_model", "model_path", "train"]
