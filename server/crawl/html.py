"""The images an HTML page shows, found with a real HTML parser (selectolax, Lexbor)."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

from .urls import join

# Lazy-loading attributes are what the page's script would copy into src/srcset.
SRC_ATTRIBUTES = ("src", "data-src", "data-lazy-src", "data-original")
SRCSET_ATTRIBUTES = ("srcset", "data-srcset")
META_IMAGES = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
SCHEMES = ("http:", "https:", "data:")
# CSS url() tokens in an inline style (quoted or not); the HTML is parsed, this reads one CSS value.
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))\s*\)""", re.IGNORECASE)


def srcset_urls(value: str) -> list[str]:
    """Every candidate URL of a srcset, as the HTML standard splits it (URLs may hold commas: data: URLs)."""
    urls, position, size = [], 0, len(value)
    while position < size:
        while position < size and (value[position].isspace() or value[position] == ","):
            position += 1
        start = position
        while position < size and not value[position].isspace():
            position += 1
        url = value[start:position]
        if url.endswith(","):
            url = url.rstrip(",")
        else:   # skip the descriptors up to the comma that ends the candidate (none inside parentheses)
            depth = 0
            while position < size and (value[position] != "," or depth):
                depth += {"(": 1, ")": -1}.get(value[position], 0)
                position += 1
        if url:
            urls.append(url)
    return urls


def _references(tree) -> list[str]:
    found: list[str] = []
    for node in tree.css("img, source, [style], meta, noscript"):
        attributes = node.attributes
        if node.tag in ("img", "source"):
            found += [attributes[name] or "" for name in SRC_ATTRIBUTES if name in attributes]
            for name in SRCSET_ATTRIBUTES:
                found += srcset_urls(attributes.get(name) or "")
        if node.tag == "meta" and (attributes.get("property") or attributes.get("name") or "").lower() in META_IMAGES:
            found.append(attributes.get("content") or "")
        if attributes.get("style"):
            found += [next(group for group in match.groups() if group is not None)
                      for match in _CSS_URL.finditer(attributes["style"])]
        if node.tag == "noscript":   # parsed as text when scripting is on: the fallback markup, parsed again
            # Its own text only: nested elements are in this query already, and a deep text of each of
            # thousands of nested noscripts is quadratic (30,000 of them, 300 KB, took 17 s).
            text = node.text(deep=False)
            if "<" in text:
                found += _references(LexborHTMLParser(text))
    return found


def image_references(html: bytes | str, page_url: str) -> list[str]:
    """Absolute image URLs (http, https, data) in document order, each once, resolved against ``<base href>``
    (ignored when it cannot be parsed, as browsers do); references that cannot be parsed are left out."""
    tree = LexborHTMLParser(html)
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = join(page_url, (base_node.attributes.get("href") or "").strip()) or page_url
    seen: dict[str, None] = {}
    for reference in _references(tree):
        reference = reference.strip()
        if not reference or reference.startswith("#"):   # the page itself
            continue
        url = reference if reference[:5].lower() == "data:" else join(base, reference)
        if url and url[:6].lower().startswith(SCHEMES):
            seen.setdefault(url, None)
    return list(seen)
