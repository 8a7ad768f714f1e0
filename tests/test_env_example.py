""".env.example lists every environment variable the code reads, each with a comment giving its default.

The code is read, not run: every module of the packages the wheel ships (pyproject.toml's
`[tool.setuptools.packages.find] include`) and of the development tools is parsed, and these count as
reading a variable whose name is a string literal:
- a call to a reader: a function defined in platform_app/env.py (`env_str`, `env_int`, …), or any
  function that passes its first parameter on to a reader as the name (`_production_required`);
- `os.environ.get("X")`, `os.getenv("X")`, `os.environ["X"]`, `"X" in os.environ` (any `…environ`);
- the values of a module-level dict whose name contains ENVIRON (sandbox/cli.py's option → variable map).
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
TOOLS = ("sandbox", "devtools")  # not shipped, but run by people: their variables are listed too
_VARIABLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def _package_dirs() -> list[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    names = {pattern.rstrip("*").rstrip(".") for pattern in patterns} | set(TOOLS)
    return sorted(ROOT / name for name in names if (ROOT / name).is_dir())


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for package in _package_dirs():
        for path in sorted(package.rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _first_arg(node: ast.Call) -> ast.AST | None:
    if node.args:
        return node.args[0]
    return next((kw.value for kw in node.keywords if kw.arg == "name"), None)


def _is_environ(node: ast.AST) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name.endswith("environ")


def _readers(modules: list[tuple[Path, ast.Module]]) -> set[str]:
    """platform_app/env.py's helpers, and every function that hands its first parameter to one."""
    env_module = ast.parse((ROOT / "platform_app" / "env.py").read_text(encoding="utf-8"))
    readers = {node.name for node in env_module.body if isinstance(node, ast.FunctionDef)}
    functions = [node for _, tree in modules for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    changed = True
    while changed:
        changed = False
        for function in functions:
            if function.name in readers or not function.args.args:
                continue
            parameter = function.args.args[0].arg
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and _callee(node) in readers
                    and isinstance(_first_arg(node), ast.Name)
                    and _first_arg(node).id == parameter  # type: ignore[union-attr]
                ):
                    readers.add(function.name)
                    changed = True
                    break
    return readers


@cache
def variables_read() -> dict[str, str]:
    """Variable name → the first place that reads it (path:line)."""
    modules = list(_modules())
    readers = _readers(modules)
    found: dict[str, str] = {}

    def note(name: str | None, path: Path, node: ast.AST) -> None:
        if name:
            found.setdefault(name, f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")

    for path, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                callee = _callee(node)
                environ_get = callee == "get" and isinstance(node.func, ast.Attribute) and _is_environ(node.func.value)
                if callee in readers or callee == "getenv" or environ_get:
                    note(_literal(_first_arg(node)), path, node)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
                note(_literal(node.slice), path, node)
            elif (
                isinstance(node, ast.Compare)
                and any(isinstance(op, ast.In) for op in node.ops)
                and any(_is_environ(c) for c in node.comparators)
            ):
                note(_literal(node.left), path, node)
        for statement in tree.body:
            if (
                isinstance(statement, ast.Assign)
                and isinstance(statement.value, ast.Dict)
                and any(isinstance(t, ast.Name) and "ENVIRON" in t.id.upper() for t in statement.targets)
            ):
                for value in statement.value.values:
                    note(_literal(value), path, value)
    # docker-compose.yml reads some itself (${NAME…}): the passwords it builds the URLs from.
    compose = ROOT / "docker-compose.yml"
    for number, line in enumerate(compose.read_text(encoding="utf-8").splitlines(), start=1):
        for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)", line):
            found.setdefault(name, f"docker-compose.yml:{number}")
    return found


def env_example_entries() -> dict[str, int]:
    """Variable name → its line number (1-based) in .env.example, set or commented out."""
    entries: dict[str, int] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        match = _VARIABLE_LINE.match(line)
        if match:
            entries.setdefault(match.group(1), number)
    return entries


def test_the_scan_sees_the_settings_the_demo_runner_and_the_sandbox() -> None:
    # Guards the scanner itself: if it stopped recognising reads, the tests below would pass vacuously.
    read = variables_read()
    for name in ("DJANGO_DEBUG", "DATABASE_URL", "FIELD_ENCRYPTION_KEYS", "WECHAT_COMPONENT_APPID", "PORT"):
        assert name in read, f"the scan no longer sees {name}"
    assert "SANDBOX_TICKET_INTERVAL" in read  # through sandbox/cli.py's ENVIRONMENT map


def test_every_variable_the_code_reads_is_listed_in_env_example() -> None:
    listed = env_example_entries()
    missing = {name: where for name, where in variables_read().items() if name not in listed}
    assert not missing, "add these to .env.example (with a comment and the default): " + ", ".join(
        f"{name} (read at {where})" for name, where in sorted(missing.items())
    )


def test_env_example_lists_only_variables_the_code_reads() -> None:
    stale = sorted(set(env_example_entries()) - set(variables_read()))
    assert not stale, f".env.example lists variables nothing reads any more: {', '.join(stale)}"


def test_every_variable_in_env_example_has_a_comment_giving_its_default() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    undocumented = []
    for name, number in env_example_entries().items():
        comment: list[str] = []
        index = number - 2  # the line above, 0-based
        while index >= 0 and lines[index].startswith("#") and not _VARIABLE_LINE.match(lines[index]):
            comment.insert(0, lines[index])
            index -= 1
        if not re.search(r"\bdefault\b", " ".join(comment), re.IGNORECASE):
            undocumented.append(name)
    assert not undocumented, f"give these a comment line above them saying the default: {', '.join(undocumented)}"


def test_env_example_lists_each_variable_once() -> None:
    names = [
        match.group(1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if (match := _VARIABLE_LINE.match(line))
    ]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f".env.example lists these more than once: {', '.join(repeated)}"
