"""Reading the platform's authorization page the way a browser would follow it.

The demo runner and the end-to-end harness drive the authorization flow with `requests`: they read
the page's links and send what a browser sends when it follows one, a Referer with the page's origin
(the page's referrer policy, strict-origin-when-cross-origin, sends no more than that).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

PC_LINK = "authorize-pc"
MOBILE_LINK = "authorize-mobile"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and values.get("id"):
            self.links[values["id"]] = values


def page_links(html: str) -> dict[str, dict[str, str]]:
    """id → attributes (href, referrerpolicy, …) of every <a id=…> on the page."""
    parser = _Links()
    parser.feed(html)
    return parser.links


def referer_for(page_url: str) -> str:
    """What strict-origin-when-cross-origin sends cross-origin: the page's origin and a slash."""
    parts = urlsplit(page_url)
    return f"{parts.scheme}://{parts.netloc}/"
