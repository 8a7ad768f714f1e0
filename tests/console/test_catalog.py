"""The Chinese catalog is the .po file: complete, with no guess left in it, and compiled into the .mo.

``make messages`` refreshes it with Django's makemessages and compilemessages (GNU gettext). These
tests need no gettext: they find the project's translatable strings themselves (the Python source
with ``ast``, the templates with Django's own ``templatize``) and read both files with polib, so a
machine with nothing but Python proves the catalog as well as a translator's.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import polib
import pytest
from django.utils.translation.template import templatize

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "console" / "locale" / "zh_Hans" / "LC_MESSAGES"
# The packages that ship (pyproject's package list): the tools and the tests are never translated.
PRODUCT = (
    "platform_app",
    "wechat",
    "dbkit",
    "authorizers",
    "kfaccounts",
    "audit",
    "console",
    "webhooks",
    "cleanup",
    "observability",
)

# The keywords makemessages hands xgettext: name -> (context argument, singular, plural) positions.
KEYWORDS: dict[str, tuple[int | None, int, int | None]] = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}

Key = tuple[str, str]  # (msgctxt or "", msgid)


def _key(name: str, args: list[str | None]) -> tuple[Key, str | None] | None:
    context, singular, plural = KEYWORDS[name]
    needed = max(i for i in (context, singular, plural) if i is not None)
    if len(args) <= needed or any(args[i] is None for i in (context, singular, plural) if i is not None):
        return None  # not a literal: xgettext skips it too
    return ((args[context] or "") if context is not None else "", args[singular] or ""), (
        args[plural] if plural is not None else None
    )


def _python_strings(source: str) -> dict[Key, str | None]:
    found: dict[Key, str | None] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name not in KEYWORDS:
            continue
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        if (entry := _key(name, args)) is not None:
            found[entry[0]] = entry[1]
    return found


def _template_strings(source: str) -> dict[Key, str | None]:
    """Django turns a template into the pseudo-Python xgettext reads; read its calls the same way."""
    found: dict[Key, str | None] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(templatize(source)).readline))
    for index, token in enumerate(tokens):
        if token.type != tokenize.NAME or token.string not in KEYWORDS or tokens[index + 1].string != "(":
            continue
        args: list[str | None] = []
        for inner in tokens[index + 2 :]:
            if inner.string == ")":
                break
            if inner.type == tokenize.STRING:
                args.append(ast.literal_eval(inner.string))
            elif inner.type == tokenize.NAME:
                args.append(None)
        if (entry := _key(token.string, args)) is not None:
            found[entry[0]] = entry[1]
    return found


def project_strings() -> dict[Key, str | None]:
    """Every string the product marks for translation, with its plural form (None if it has none)."""
    found: dict[Key, str | None] = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix == ".py":
                found.update(_python_strings(path.read_text(encoding="utf-8")))
            elif path.suffix in (".html", ".txt"):
                found.update(_template_strings(path.read_text(encoding="utf-8")))
    return found


@pytest.fixture(scope="module")
def po() -> polib.POFile:
    return polib.pofile(str(LOCALE / "django.po"))


def test_the_extraction_sees_python_and_templates():
    assert _python_strings('x = _("a") + ngettext("%(n)d b", "%(n)d bs", 2) + pgettext("menu", "c") + f(y)') == {
        ("", "a"): None,
        ("", "%(n)d b"): "%(n)d bs",
        ("menu", "c"): None,
    }
    assert _template_strings(
        '{% load i18n %}{% translate "d" %} {% blocktranslate with n=x %}e {{ n }}{% endblocktranslate %}'
        "{% blocktranslate count c=n %}one{% plural %}{{ c }} many{% endblocktranslate %}"
    ) == {("", "d"): None, ("", "e %(n)s"): None, ("", "one"): "%(c)s many"}


def test_every_translatable_string_of_the_product_has_a_chinese_translation(po):
    catalog = {(entry.msgctxt or "", entry.msgid): entry for entry in po if not entry.obsolete}
    strings = project_strings()
    assert len(strings) > 300
    missing = sorted(msgid for key, _plural in strings.items() if key not in catalog for msgid in [key[1]])
    assert missing == [], "not in the catalog (run `make messages` and translate): " + "; ".join(missing)
    untranslated = sorted(key[1] for key in strings if not catalog[key].translated())
    assert untranslated == [], "no Chinese yet in django.po: " + "; ".join(untranslated)


def test_no_translation_is_a_guess(po):
    # msgmerge marks a near match "fuzzy"; compilemessages leaves it out, so the page falls back to English.
    fuzzy = [entry.msgid for entry in po.fuzzy_entries()]
    assert fuzzy == [], "fuzzy entries in django.po (check the translation, remove the flag): " + "; ".join(fuzzy)


def test_the_committed_mo_is_compiled_from_the_po(po):
    def table(entries: polib._BaseFile) -> dict[Key, object]:
        # What a .mo holds: every translated entry that is neither obsolete nor fuzzy (msgfmt's rule).
        return {
            (entry.msgctxt or "", entry.msgid): (
                tuple(sorted(entry.msgstr_plural.items())) if entry.msgid_plural else entry.msgstr
            )
            for entry in entries
            if entry.msgid
            and not entry.obsolete
            and "fuzzy" not in entry.flags
            and (entry.msgstr or any(entry.msgstr_plural.values()))
        }

    compiled = table(polib.mofile(str(LOCALE / "django.mo")))
    source = table(po)
    stale = sorted(key[1] for key in source.keys() | compiled.keys() if source.get(key) != compiled.get(key))
    assert stale == [], "django.mo differs from django.po (run `make messages`): " + "; ".join(stale)
