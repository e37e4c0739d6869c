"""Every figure of docs/theory/ is produced by a script in docs/theory/scripts/: each script runs and writes a
PNG, and refuses to overwrite it without --force."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "ch4_term_trees": "ch4-term-trees.png",
    "three_body_growth": "three-body-growth.png",
    "body_order_profile": "body-order-vs-T.png",
    "degenerate_pair_figure": "degenerate-pair.png",
}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "theory" / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_figure_on_the_pages_has_a_script() -> None:
    pages = "".join(p.read_text() for p in (ROOT / "docs" / "theory").glob("*.md"))
    figures = {p.name for p in (ROOT / "docs" / "theory" / "figures").glob("*.png")}
    assert figures == set(SCRIPTS.values())
    for figure in figures:
        assert f"figures/{figure}" in pages, figure


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_figure_script_writes_its_png(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load(name)
    if name == "body_order_profile":
        monkeypatch.setattr(module, "CASES", module.CASES[:2])  # the 2^16-subset case is run by the tests
    if name == "three_body_growth":
        methane_cases = module.cases()[:2]
        monkeypatch.setattr(module, "cases", lambda: methane_cases)
    if name == "degenerate_pair_figure":
        monkeypatch.setattr(module, "separation", lambda cutoff, seeds: module.np.full((1, 4), module.FLOOR))
    out = tmp_path / SCRIPTS[name]
    module.main(["--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        module.main(["--out", str(out)])  # exists: needs --force (checked before any work)
