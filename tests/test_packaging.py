"""pyproject.toml declares what the package imports, and the version has one source."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import reann_driver

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared_distributions() -> set[str]:
    project = PROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def imported_modules() -> set[str]:
    names = set()
    for path in (ROOT / "reann_driver").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"reann_driver"}


def test_every_imported_package_is_declared():
    distributions = metadata.packages_distributions()
    declared = declared_distributions()
    missing = []
    for module in sorted(imported_modules()):
        candidates = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not candidates & declared:
            missing.append(f"{module} ({', '.join(sorted(candidates))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_one_version_source_and_a_pep639_licence():
    assert "version" not in PROJECT["project"] and "version" in PROJECT["project"]["dynamic"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "reann_driver.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", reann_driver.__version__)
    assert isinstance(PROJECT["project"]["license"], str)  # an SPDX expression needs setuptools >= 77
    setuptools = [r for r in PROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools and tuple(map(int, setuptools[0].split(">=")[1].split("."))) >= (77,)
    assert "tensorboard" in PROJECT["project"]["optional-dependencies"]
