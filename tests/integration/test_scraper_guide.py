"""docs/collector-guide.md followed from scratch: its files are written out as the guide says, its
collector is loaded as a plugin, and its own tests run (against the sandbox, then offline from a
recorded and scrubbed HAR)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from services.scraper.kit import Collector
from shared.natsserver import free_port, port_open

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "collector-guide.md"
_BLOCK = re.compile(r"^```python file=(?P<path>\S+)\n(?P<code>.*?)^```$", re.M | re.S)


def guide_files() -> dict[str, str]:
    return {m["path"]: m["code"] for m in _BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))}


def _import_guide_package(tmp_path: Path, name: str) -> ModuleType:
    """The guide's collector package ``name``, written to a scratch folder and imported under the
    name the guide gives it (without touching the repository)."""
    package = f"services.scraper.collectors.{name}"
    folder = tmp_path / name
    folder.mkdir()
    for path, code in guide_files().items():
        if path.startswith(f"services/scraper/collectors/{name}/"):
            (folder / Path(path).name).write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(package, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    return module


def _forget(name: str) -> None:
    package = f"services.scraper.collectors.{name}"
    for loaded in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[loaded]


@pytest.fixture
def guide_package(tmp_path: Path) -> Iterator[ModuleType]:
    try:
        yield _import_guide_package(tmp_path, "guide_classic")
    finally:
        _forget("guide_classic")


@pytest.fixture
def guide_legacy(tmp_path: Path) -> Iterator[ModuleType]:
    try:
        yield _import_guide_package(tmp_path, "guide_legacy")
    finally:
        _forget("guide_legacy")


def test_the_guide_writes_a_recipe_a_plugin_and_a_test() -> None:
    assert set(guide_files()) == {
        "services/scraper/collectors/guide_classic/recipe.py",
        "services/scraper/collectors/guide_classic/__init__.py",
        "tests/integration/test_guide_classic.py",
        "services/scraper/collectors/guide_legacy/recipe.py",
        "services/scraper/collectors/guide_legacy/__init__.py",
        "tests/integration/test_guide_legacy.py",
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


async def test_the_guides_legacy_example_collects_two_sites(guide_legacy: ModuleType) -> None:
    collector: Collector = guide_legacy.COLLECTOR
    assert collector.manifest.id == "guide-legacy"
    recipe_lines = guide_files()["services/scraper/collectors/guide_legacy/recipe.py"].splitlines()
    assert len(recipe_lines) <= 60  # the target for this portal
    code = guide_files()["tests/integration/test_guide_legacy.py"]
    tests = ModuleType("test_guide_legacy")
    exec(compile(code, "docs/collector-guide.md#test_guide_legacy.py", "exec"), tests.__dict__)
    await tests.test_collects_both_sites_over_the_whole_history()


_SHELL = re.compile(r"^```sh run\n(?P<code>.*?)^```$", re.M | re.S)


def test_the_guides_fix_loop_runs_as_written(tmp_path: Path) -> None:
    """The guide's shell blocks, run as written against a sandbox (``$PORTAL``), in a scratch folder."""
    blocks = [m["code"] for m in _SHELL.finditer(GUIDE.read_text(encoding="utf-8"))]
    assert len(blocks) == 2
    port = free_port()
    env = {**os.environ, "PORTAL": f"http://127.0.0.1:{port}/legacy/",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as sandbox:
        try:
            deadline = time.monotonic() + 30
            while not port_open(port):
                assert time.monotonic() < deadline and sandbox.poll() is None, "the sandbox did not start"
                time.sleep(0.1)
            for block in blocks:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                                      capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, done.stderr[-2000:]
        finally:
            sandbox.terminate()
    live, replay, broken = (json.loads((tmp_path / f"{name}.json").read_text())
                            for name in ("live", "replay", "broken"))
    assert live["outcome"] == replay["outcome"] == "ok"
    assert live["documents"] == replay["documents"] and len({d["site"] for d in live["documents"]}) == 2
    assert broken["outcome"] == "interface_changed" and broken["documents"] == []
    assert "demo" not in (tmp_path / "legacy.har").read_text(encoding="utf-8")
