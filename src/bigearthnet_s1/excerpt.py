"""Short, safe excerpts of the bodies servers send with an error, for the library's messages.

An HTML page is reduced to its ``<title>`` (else its text without tags), entities decoded,
whitespace collapsed; an OAuth 2 / OpenID Connect error answer to its ``error`` and
``error_description``. The text is redacted BEFORE it is cut: a server may echo the request,
``Authorization`` header included, and a secret cut in half would escape the patterns.
"""

from __future__ import annotations

import html
import json
import re

from bigearthnet_s1.redact import redact

__all__ = ["body_excerpt", "oauth_error", "looks_like_html"]

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")


def body_excerpt(content: bytes, limit: int = 160) -> str:
    """At most ``limit`` characters of a response body (then "..."), readable and redacted."""
    m = _TITLE.search(content[:20000])
    if m:
        text = m.group(1).decode("utf-8", "replace")
    else:
        text = _TAGS.sub(" ", content[:2000].decode("utf-8", "replace"))
    text = redact(" ".join(html.unescape(text).split()))
    return text[:limit] + ("..." if len(text) > limit else "")


def oauth_error(content: bytes, limit: int = 200) -> str:
    """``": <error> <error_description>"`` of an OAuth 2 error answer (JSON), redacted and cut
    to ``limit`` characters, to append to a message; "" when the body is no such answer."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    text = redact(" ".join(str(body.get(k) or "") for k in ("error", "error_description")).strip())
    return f": {text[:limit]}" + ("..." if len(text) > limit else "") if text else ""


def looks_like_html(head: bytes, content_type: str | None = None) -> bool:
    """Whether a body (its first bytes) is an HTML or XML document rather than data or JSON."""
    return "html" in (content_type or "").lower() or head.lstrip()[:1] == b"<"
