"""docs/collector-guide.md followed from scratch: its files are written out as the guide says, its
collector is loaded as a plugin, and its own tests run (against the sandbox, then offline from a
recorded and scrubbed HAR)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from services.scraper.kit import Collector

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "collector-guide.md"
PACKAGE = "services.scraper.collectors.guide_classic"
_BLOCK = re.compile(r"^```python file=(?P<path>\S+)\n(?P<code>.*?)^```$", re.M | re.S)


def guide_files() -> dict[str, str]:
    return {m["path"]: m["code"] for m in _BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))}


@pytest.fixture
def guide_package(tmp_path: Path) -> Iterator[ModuleType]:
    """The guide's collector package, written to a scratch folder and imported under the name the
    guide gives it (without touching the repository)."""
    files = guide_files()
    folder = tmp_path / "guide_classic"
    folder.mkdir()
    for path, code in files.items():
        if path.startswith("services/scraper/collectors/guide_classic/"):
            (folder / Path(path).name).write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(PACKAGE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_the_guide_writes_a_recipe_a_plugin_and_a_test() -> None:
    assert set(guide_files()) == {
        "services/scraper/collectors/guide_classic/recipe.py",
        "services/scraper/collectors/guide_classic/__init__.py",
        "tests/integration/test_guide_classic.py",
    }


def test_the_guides_collector_is_a_plugin(guide_package: ModuleType) -> None:
    collector: Collector = guide_package.COLLECTOR
    assert collector.manifest.id == "guide-classic" and guide_package.MANIFEST is collector.manifest
    from services.scraper.collectors import builtin_collectors

    assert "guide-classic" not in builtin_collectors()  # an example, not a second classic collector


async def test_the_guides_tests_pass(guide_package: ModuleType, tmp_path: Path) -> None:
    code = guide_files()["tests/integration/test_guide_classic.py"]
    tests = ModuleType("test_guide_classic")
    exec(compile(code, "docs/collector-guide.md#test_guide_classic.py", "exec"), tests.__dict__)
    await tests.test_collects_every_document()
    await tests.test_replays_a_recorded_session_offline(tmp_path)
