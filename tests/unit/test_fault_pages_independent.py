"""Fault pages written without reading the classifier, through what the runner does with them.

``dev/`` pages are the ones the classifier was tuned on: all must be right. ``holdout/`` pages were
never read while tuning it: their score is the honest measure of how it generalises, reported here
(``pytest -s``, or ``python tools/fault_pages_report.py``) with a floor, not a target.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_TOOL = Path(__file__).resolve().parents[2] / "tools" / "fault_pages_report.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_pages_report", _TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fault_pages_get_their_code() -> None:
    tool = _tool()
    verdicts = tool.verdicts()
    print("\n" + tool.report(verdicts))
    dev = [v for v in verdicts if v.part == "dev"]
    holdout = [v for v in verdicts if v.part == "holdout"]
    assert len(dev) == 48 and len(holdout) == 21
    assert [v for v in dev if not v.right] == []
    assert sum(v.right for v in holdout) >= 0.8 * len(holdout)
