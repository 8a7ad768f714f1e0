"""The flat XML WeChat pushes (`<xml><Field>value</Field>…</xml>`), parsed without trusting it.

Pushes arrive from the internet before anything is authenticated (the envelope is parsed to find
`Encrypt`), so the parser refuses DTDs, entities and external references, caps the size, and accepts
UTF-8 only.
"""

from __future__ import annotations

from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["DEFAULT_MAX_BYTES", "XMLError", "parse_xml"]

DEFAULT_MAX_BYTES = 64 * 1024


class XMLError(ValueError):
    pass


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Return the root's direct children as tag -> text ("" when empty); nested elements keep only their own text."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_xml takes bytes")
    if len(data) > max_bytes:
        raise XMLError(f"document larger than {max_bytes} bytes")
    try:
        # Decoding ourselves (and feeding str) makes the parser ignore any encoding declaration,
        # so a body declared as GBK or UTF-16 cannot smuggle in a different reading of the bytes.
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise XMLError("document is not UTF-8") from None
    if not text.strip():
        raise XMLError("empty document")
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XMLError(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise XMLError(f"malformed XML: {exc}") from None
    if root.tag != "xml":
        raise XMLError("root element must be <xml>")

    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str):  # comments / processing instructions, if a parser keeps them
            continue
        if child.tag in fields:
            # Two values for one field: refuse rather than pick one the sender chose for us.
            raise XMLError(f"duplicate element <{child.tag}>")
        fields[child.tag] = child.text or ""
    return fields
