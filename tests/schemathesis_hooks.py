"""schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS=schemathesis_hooks).

Before every request, each string in the body that the server's URL guard would resolve or connect to (http or https
with a host, as ``server/fetch.py`` reads it) is replaced by a URL on the loopback image server named by
``GAMMA_ST_IMAGES`` (an image, a 404) or by one the guard refuses without any lookup (a private address literal).
So no generated request makes the server resolve a name or reach a host off this machine. schemathesis revalidates
a case its hook changed, so a URL mapped from an invalid one is no longer counted as negative data.
"""

from __future__ import annotations

import os
import zlib
from urllib.parse import urlsplit

import schemathesis

REFUSED = "http://10.0.0.1/refused.png"   # a private literal: url_not_allowed, no lookup, no connection
IMAGE_PATHS = ("/img/0.png", "/img/1.png", "/missing.png")   # tests/test_schemathesis.py serves the first two


def reaches_a_host(value: str) -> bool:
    """Whether the URL guard would look this string's host up or connect to it (its own parse: strip, urlsplit)."""
    try:
        parts = urlsplit(value.strip())
        parts.port   # noqa: B018 - raises on a malformed port, as in the guard
    except ValueError:   # a malformed port or IPv6 literal: the guard refuses it before any lookup
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def loopback(value: str, images: str) -> str:
    """Where a URL is sent instead: the same string always maps to the same place."""
    choice = zlib.crc32(value.encode("utf-8", "surrogatepass")) % (len(IMAGE_PATHS) + 1)
    return REFUSED if choice == len(IMAGE_PATHS) else images + IMAGE_PATHS[choice]


def mapped(value, images: str):
    if isinstance(value, str):
        return loopback(value, images) if reaches_a_host(value) else value
    if isinstance(value, dict):
        return {key: mapped(item, images) for key, item in value.items()}
    if isinstance(value, list):
        return [mapped(item, images) for item in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    if isinstance(case.body, (dict, list, str)):
        case.body = mapped(case.body, os.environ["GAMMA_ST_IMAGES"])
