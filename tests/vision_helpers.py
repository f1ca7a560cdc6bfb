"""Shared helpers for vision tests: one loaded pipeline per test session."""

from __future__ import annotations

import functools

from edge.config import parse_config
from edge.pipeline import Pipeline


@functools.cache
def pipeline(config_text: str = "") -> Pipeline:
    return Pipeline.from_config(parse_config(config_text))
