"""Where the shipped model files live: services/relevance/models/<topic>.json."""
from __future__ import annotations

from pathlib import Path

from services.relevance.model import Model

MODELS_DIR = Path(__file__).parent / "models"


def model_path(topic: str, directory: Path = MODELS_DIR) -> Path:
    """`topic:fx` -> models/fx.json."""
    kind, _, name = topic.partition(":")
    if kind != "topic" or not name or "/" in name or name.startswith("."):
        raise ValueError(f"not a topic: {topic!r}")
    return Path(directory) / f"{name}.json"


def load_model(topic: str, directory: Path = MODELS_DIR) -> Model | None:
    path = model_path(topic, directory)
    return Model.load(path) if path.exists() else None
