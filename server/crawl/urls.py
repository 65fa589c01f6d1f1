"""URLs as a crawl matches them: one normal form for the page's reference and the archive's capture."""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 unreserved characters and the reserved ones kept as they are; everything else percent-encoded.
_SAFE = "!$&'()*+,;=:@/~-._"
_SAFE_QUERY = _SAFE + "?"
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def strip_brackets(uri: str) -> str:
    """GNU Wget writes ``WARC-Target-URI: <http://...>`` (WARC/1.0's grammar); the URI is inside."""
    uri = uri.strip()
    return uri[1:-1] if uri.startswith("<") and uri.endswith(">") else uri


def _requote(part: str, safe: str) -> str:
    # Raw spaces and non-ASCII encoded; escapes of characters that need none decoded (%7E -> ~), hex upper-cased.
    return _ESCAPE.sub(lambda m: _canonical_escape(m.group()), quote(part, safe=safe + "%"))


def _canonical_escape(escape: str) -> str:
    char = chr(int(escape[1:], 16))
    return char if char.isascii() and (char.isalnum() or char in "-._~") else escape.upper()


def normalize(url: str) -> str:
    """Scheme and host lower-cased, default port and fragment dropped, an empty path made ``/``,
    percent-encoding made canonical. Not SURT: ``www.`` and query order stay, they can name other resources."""
    url = strip_brackets(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return url.split("#", 1)[0]
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _requote(parts.path or "/", _SAFE)
    query = _requote(parts.query, _SAFE_QUERY)
    return urlunsplit((scheme, netloc, path, query, ""))


def join(base: str, reference: str) -> str | None:
    """``reference`` made absolute against ``base``, or None when either cannot be parsed (urlsplit raises
    ValueError on ``http://[::1``): a browser loads nothing from a URL it cannot parse."""
    try:
        return urljoin(base, reference)
    except ValueError:
        return None
