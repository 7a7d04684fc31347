"""The sample-data generator, ``mappings/samples/generate.py``, imported for the mapping tests.

It is a script beside the samples it writes, not a package module, so it is loaded from its path;
here once, for the sample tests and both seed-pair modules alike.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["GEN_PATH", "gen"]

GEN_PATH = Path(__file__).resolve().parents[2] / "mappings" / "samples" / "generate.py"

_spec = importlib.util.spec_from_file_location("fmap_sample_generate", GEN_PATH)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
