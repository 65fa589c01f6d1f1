"""The images an HTML page shows, found with a real HTML parser (selectolax, Lexbor)."""

from __future__ import annotations

import re

import numpy as np
from selectolax.lexbor import LexborHTMLParser

from .urls import join

# Lazy-loading attributes are what the page's script would copy into src/srcset.
SRC_ATTRIBUTES = ("src", "data-src", "data-lazy-src", "data-original")
SRCSET_ATTRIBUTES = ("srcset", "data-srcset")
META_IMAGES = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
SCHEMES = ("http:", "https:", "data:")
# CSS url() tokens in an inline style (quoted or not); the HTML is parsed, this reads one CSS value.
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))\s*\)""", re.IGNORECASE)

# The tree builder's time grows with the square of the page's nesting (each start and end tag walks the stack
# of open elements): 30,000 nested <div>s (330 KB) took 2.5 s, 100,000 a minute. Browsers stop nesting at 512
# (Chromium's parser limit), so a page that opens more elements than that is refused before it is parsed.
MAX_DEPTH = 512
# Elements that never stay open under later ones: void elements, and those whose end tag is optional (the
# parser closes them itself). Not counted, so that 10,000 unclosed <li> or <option> stay a flat page.
_NOT_NESTING = [name.encode().ljust(8, b"\0") for name in (
    "area base basefont bgsound br col embed frame hr image img input keygen link meta param source track wbr "
    "html head body li dt dd p rt rp rb rtc optgroup option colgroup caption thead tbody tfoot tr td th").split()]
_NOT_NESTING_KEYS = np.frombuffer(b"".join(_NOT_NESTING), "<u8")
_NAME_BYTES = 24   # longer tag names are told apart by these bytes only; their end tags never close anything
_NAME_END = np.zeros(256, bool)   # what ends a tag name (HTML tokenizer; a NUL is part of it)
_NAME_END[list(b"\t\n\x0c\r />")] = True
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[ord("A"):ord("Z") + 1] += 32


class TooDeep(ValueError):
    """The page nests elements deeper than MAX_DEPTH."""


def _names(text: np.ndarray, begin: np.ndarray, length: np.ndarray, width: int) -> np.ndarray:
    """The first ``width`` bytes of each name, zero past its end."""
    window = np.lib.stride_tricks.sliding_window_view(text, width)[begin]
    return np.where(np.arange(width) < length[:, None], window, 0).astype(np.uint8)


def nesting_bound(html: bytes) -> int:
    """The most elements that can be open at once while ``html`` is parsed: each start tag (of an element that
    needs an end tag) opens one, an end tag closes one of its name if one is open, as a stack of open elements
    does; at least the depth the parser reaches (tags in script or style text count too: the bound errs high).
    Vectorised: a large page holds millions of tags."""
    text = np.concatenate([_LOWER[np.frombuffer(html, np.uint8)], np.full(_NAME_BYTES + 1, ord(">"), np.uint8)])
    lt = np.flatnonzero(text[:-_NAME_BYTES - 1] == ord("<"))
    end = text[lt + 1] == ord("/")
    begin = lt + 1 + end
    tag = (text[begin] >= ord("a")) & (text[begin] <= ord("z"))
    begin, end = begin[tag], end[tag]
    stops = np.flatnonzero(_NAME_END[text])
    length = np.minimum(stops[np.searchsorted(stops, begin)] - begin, _NAME_BYTES + 1)
    head = _names(text, begin, length, 8)
    key = head.view("<u8").ravel()   # zero past the name: a name of at most 8 bytes with no NUL is its key
    listed = (length <= 8) & ((head != 0).sum(1) == length) & np.isin(key, _NOT_NESTING_KEYS)
    counted = ~listed & ~(end & (length > _NAME_BYTES))
    begin, length, key, step = begin[counted], length[counted], key[counted], np.where(end[counted], -1, 1)
    if not len(step):
        return 0
    # Names told apart exactly, NULs and all: up to 7 bytes, the key with the length in its eighth byte; longer
    # ones (rare) numbered by their bytes and length, above every short key.
    long = length > 7
    key[~long] |= length[~long].astype(np.uint64) << np.uint64(56)
    if long.any():
        named = np.concatenate([_names(text, begin[long], length[long], _NAME_BYTES),
                                length[long, None].astype(np.uint8)], axis=1)
        numbered = np.unique(named.view(f"V{_NAME_BYTES + 1}").ravel(), return_inverse=True)[1]
        key[long] = (1 << 62) + numbered.ravel().astype(np.uint64)
    # Per name, open = the running sum of its steps floored at 0 (an end tag with none open is ignored):
    # sum - min(0, running minimum of the sum). Names are sorted into runs, and each run shifted below the ones
    # before it so that one running minimum over all of them never reaches back into an earlier run.
    order = np.argsort(key, kind="stable")
    key, ordered = key[order], step[order]
    first = np.r_[True, key[1:] != key[:-1]]
    run = np.cumsum(first) - 1
    total = np.cumsum(ordered)
    within = total - (total - ordered)[np.flatnonzero(first)][run]
    shift = run * (2 * len(run) + 2)
    open_ = within - np.minimum(np.minimum.accumulate(within - shift) + shift, 0)
    change = np.diff(np.r_[0, open_])
    change[first] = open_[first]
    depth = np.empty_like(change)
    depth[order] = change
    return int(np.cumsum(depth).max())


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
    (ignored when it cannot be parsed, as browsers do); references that cannot be parsed are left out.
    Raises TooDeep for a page nested deeper than MAX_DEPTH."""
    raw = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html
    depth = nesting_bound(raw)
    if depth > MAX_DEPTH:
        raise TooDeep(f"the page nests {depth} elements, more than {MAX_DEPTH} (browsers stop nesting there)")
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
