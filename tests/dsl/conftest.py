"""Shared helpers for the front-end tests: fixture files, IR dumps with compact spans."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fmap"


def compact_spans(obj):
    """A model_dump with every span written `L:C-L:C` (readable snapshots) and no file names."""
    if isinstance(obj, dict):
        if set(obj) == {"file", "line", "column", "end_line", "end_column"}:
            return f"{obj['line']}:{obj['column']}-{obj['end_line']}:{obj['end_column']}"
        return {k: compact_spans(v) for k, v in obj.items() if k != "file"}
    if isinstance(obj, list):
        return [compact_spans(v) for v in obj]
    return obj


def strip_spans(obj):
    """A model_dump without any position: what must survive formatting unchanged."""
    if isinstance(obj, dict):
        return {k: strip_spans(v) for k, v in obj.items() if k not in ("span", "file")}
    if isinstance(obj, list):
        return [strip_spans(v) for v in obj]
    return obj


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="session")
def compact():
    return compact_spans


@pytest.fixture(scope="session")
def strip():
    return strip_spans


@pytest.fixture(scope="session")
def fixture_files() -> list[Path]:
    return sorted(FIXTURE_DIR.glob("*.fmap"))
