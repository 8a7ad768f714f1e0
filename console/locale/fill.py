"""Fill console/locale/zh_Hans/LC_MESSAGES/django.po from zh_hans.py and compile the .mo.

    python manage.py makemessages -l zh_Hans -i .venv -i tests -i sandbox -i devtools -i bench -i deploy -i docs
    python console/locale/fill.py

makemessages runs at the top of the project: the console's strings and the domain apps' (choices,
eligibility reasons, the cleanup and webhooks admin) all land in this one catalog (LOCALE_PATHS).

Needs no gettext: the .mo is written here (the GNU format is a small table of strings), so a
machine without gettext can refresh the catalog too. Fails listing any string left untranslated.
"""

from __future__ import annotations

import ast
import re
import runpy
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
PO = HERE / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
ENTRY = re.compile(
    r'^(#[^\n]*\n)*msgid ((?:"[^\n]*"\n)+)(?:msgid_plural ((?:"[^\n]*"\n)+))?((?:msgstr(?:\[\d\])? (?:"[^\n]*"\n)+)+)',
    re.M,
)


def _text(block: str) -> str:
    return "".join(ast.literal_eval(line) for line in re.findall(r'"(?:[^"\\]|\\.)*"', block))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main() -> int:
    strings = runpy.run_path(str(HERE / "zh_hans.py"))
    ZH, ZH_PLURAL = strings["ZH"], strings["ZH_PLURAL"]

    po = PO.read_text(encoding="utf-8")
    catalog: dict[str, str] = {}
    missing: list[str] = []
    out: list[str] = []
    last = 0
    for match in ENTRY.finditer(po + "\n"):
        msgid = _text(match.group(2))
        plural = _text(match.group(3)) if match.group(3) else None
        out.append(po[last : match.start(2) - len("msgid ")])
        last = min(match.end(), len(po))
        head = f"msgid {_quote(msgid)}\n" + (f"msgid_plural {_quote(plural)}\n" if plural is not None else "")
        if not msgid:
            header = _text(match.group(4).split(" ", 1)[1])
            header = header.replace("Language: \n", "Language: zh_Hans\n")
            out.append(head + f"msgstr {_quote(header)}\n")
            catalog[""] = header
            continue
        translated = ZH_PLURAL.get(msgid) if plural is not None else ZH.get(msgid)
        if translated is None:
            missing.append(msgid)
            translated = ""
        if plural is not None:
            out.append(head + f"msgstr[0] {_quote(translated)}\n")
            if translated:
                catalog[msgid + "\0" + plural] = translated
        else:
            out.append(head + f"msgstr {_quote(translated)}\n")
            if translated:
                catalog[msgid] = translated
    out.append(po[last:])
    # The translations come from zh_hans.py, so none is a guess: drop msgmerge's fuzzy flags and the
    # previous msgids it notes (compilemessages would leave a fuzzy entry out of the .mo).
    text = re.sub(r"^#\| [^\n]*\n", "", "".join(out), flags=re.M)
    text = re.sub(r"^#, fuzzy\n", "", text, flags=re.M)
    text = re.sub(r"^#, fuzzy, ", "#, ", text, flags=re.M)
    PO.write_text(text, encoding="utf-8")
    _write_mo(catalog)
    if missing:
        print("untranslated:", *missing, sep="\n  ")
        return 1
    print(f"{len(catalog) - 1} strings → {MO.relative_to(HERE.parent.parent)}")
    return 0


def _write_mo(catalog: dict[str, str]) -> None:
    keys = sorted(catalog)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(catalog[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    offsets_ids, offsets_strs, position = [], [], 0
    for k in keys:
        offsets_ids.append((len(k.encode()), start + position))
        position += len(k.encode()) + 1
    position = 0
    for k in keys:
        offsets_strs.append((len(catalog[k].encode()), start + len(ids) + position))
        position += len(catalog[k].encode()) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    table = b"".join(struct.pack("ii", *o) for o in offsets_ids) + b"".join(struct.pack("ii", *o) for o in offsets_strs)
    MO.write_bytes(header + table + ids + strs)


if __name__ == "__main__":
    raise SystemExit(main())
