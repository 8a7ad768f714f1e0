"""What ships: the wheel and the image hold the product, never the simulator, the demo runner, tests or bench."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = {"sandbox", "devtools", "tests", "bench"}
# Only these files besides the product's packages are copied into the image.
IMAGE_FILES = {"pyproject.toml", "manage.py"}


def _product_packages() -> set[str]:
    """The top-level packages pyproject.toml ships (its `include` patterns, as ``name*``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*").rstrip(".") for pattern in patterns}


def _top_level_packages() -> set[str]:
    return {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def test_every_top_level_package_is_either_shipped_or_named_as_kept_out():
    assert _product_packages() | NOT_SHIPPED == _top_level_packages()
    assert not _product_packages() & NOT_SHIPPED


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """`pip wheel --no-deps .` of a copy of the tree (the build writes build/ and egg-info next to it)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(
        ROOT,
        source,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info", "__pycache__", "node_modules"),
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("kfplatform-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_the_product_packages_and_nothing_else(wheel):
    names = wheel.namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == _product_packages()
    assert not top & NOT_SHIPPED
    # The simulator's management command must not come along inside another package either.
    assert not [name for name in names if "sandbox" in name.split("/") or "devtools" in name.split("/")]
    (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
    assert set(wheel.read(top_level).decode().split()) == _product_packages()


def test_the_wheel_carries_the_templates_and_migrations_the_product_needs(wheel):
    names = set(wheel.namelist())
    for package in _product_packages():
        if (ROOT / package / "migrations" / "__init__.py").exists():
            assert f"{package}/migrations/__init__.py" in names, package
    templates = {str(p.relative_to(ROOT)) for p in ROOT.glob("*/templates/**/*.html")}
    shipped_templates = {t for t in templates if t.split("/")[0] in _product_packages()}
    assert shipped_templates and shipped_templates <= names


def _dockerfile_copies() -> list[str]:
    """The source of every COPY in the Dockerfile (``COPY <src> <dest>``, no --from stages)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"\s*COPY\s+(.*)$", line, flags=re.IGNORECASE)
        if match is None:
            continue
        parts = [p for p in match.group(1).split() if not p.startswith("--")]
        assert len(parts) == 2, f"one source per COPY keeps the image's contents readable: {line!r}"
        sources.append(parts[0].rstrip("/").removeprefix("./"))
    return sources


def test_the_image_copies_the_product_packages_and_two_files_only():
    sources = _dockerfile_copies()
    assert len(sources) == len(set(sources))
    assert set(sources) == _product_packages() | IMAGE_FILES
    assert not set(sources) & NOT_SHIPPED
    assert "." not in sources and "*" not in "".join(sources)  # never the whole build context


def test_the_docker_context_leaves_out_the_simulator_demo_tests_bench_and_local_state():
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not any(line.startswith("!") for line in ignored)  # nothing re-included
    assert NOT_SHIPPED | {".git", ".venv", "var", ".env"} <= ignored
