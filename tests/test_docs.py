"""The repository documents itself: no pointer to documents outside it, and the pointers inside it resolve."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WECHAT_DOC = ROOT / "docs" / "wechat.md"
# Names of documents that live outside the repository (the team's notes); nothing here may cite them.
OUTSIDE = re.compile(r"\.\./shared|\bshared/|wechat-protocol\.md|\bdesign\.md|\bservices\.md")
_MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
_SECTION = re.compile(r"§(\d+)")
_DOC_NAMED = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)\b")


@cache
def tracked_text_files() -> list[Path]:
    # The files git tracks or would track (untracked but not ignored): what a fresh clone would hold.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    files = []
    for name in listed:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".mo", ".png", ".ico", ".sqlite3", ".woff", ".woff2"}:
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


def test_nothing_points_to_documents_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in tracked_text_files()
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not found, "point to docs/ instead:\n" + "\n".join(found)


def test_every_relative_link_in_the_markdown_resolves() -> None:
    broken = []
    for path in tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in _MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            file_part = target.split("#", 1)[0]
            if not (path.parent / file_part).resolve().exists():
                broken.append(f"{path.relative_to(ROOT)} → {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_section_references_in_the_code_name_sections_of_docs_wechat_md() -> None:
    sections = {int(n) for n in re.findall(r"^## §(\d+)\b", WECHAT_DOC.read_text(encoding="utf-8"), re.MULTILINE)}
    assert sections, "docs/wechat.md has no numbered sections any more"
    wrong = []
    for path in tracked_text_files():
        if path.parts[len(ROOT.parts)] == "docs":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            cited = [int(n) for n in _SECTION.findall(line)]
            if not cited:
                continue
            if "docs/wechat.md §" not in line or any(n not in sections for n in cited):
                wrong.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not wrong, "cite WeChat facts as `docs/wechat.md §N` with an existing N:\n" + "\n".join(wrong)


def test_every_doc_the_code_names_exists() -> None:
    missing = [
        f"{path.relative_to(ROOT)}:{number}: docs/{name}"
        for path in tracked_text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for name in _DOC_NAMED.findall(line)
        if not (ROOT / "docs" / name).is_file()
    ]
    assert not missing, "these name a page docs/ does not have:\n" + "\n".join(missing)
