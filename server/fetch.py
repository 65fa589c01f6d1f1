"""SSRF-safe image fetching.

Rules: http and https only, no credentials in the URL; every address the host resolves to must
be global (no loopback, private, link-local, multicast, reserved, unspecified, unique-local,
IPv4-mapped or IPv4-embedding addresses of those); the connection goes to the address that was
checked (no second resolution); each redirect (at most 3) is checked again; connect, read and
whole-body time limits; a byte limit; no cookies, credentials or proxies; nothing of the
caller's request is forwarded.

``allow`` is a test-only set of ``(ip, port)`` pairs that may be reached although not global
(the tests' local HTTP server); it is empty unless ``GAMMA_FETCH_TEST_ALLOW`` is set.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from gamma_detect import __version__
from gamma_detect.contract import LIMITS

from .errors import ApiError

MAX_REDIRECTS = 3
USER_AGENT = f"gamma-detect/{__version__} (+image analysis; no cookies)"
_REDIRECTS = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# A host name as a resolver takes it, after IDNA: getaddrinfo would cut "a.com\x00.b.org" at the NUL and look up
# a name other than the one checked and sent as Host (found by fuzzing, tests/test_fuzz.py).
_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")

Resolver = Callable[..., list]


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str        # as written (IDNA-encoded), used for Host and TLS SNI/verification
    port: int
    path: str        # path + query, never the fragment
    address: str     # the checked IP to connect to


@dataclass(frozen=True)
class Fetched:
    data: bytes
    url: str                 # final URL after redirects
    content_type: str | None
    redirects: int


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_allowed(address: str) -> bool:
    """True for a global unicast address (and, for IPv6 that embeds IPv4, a global embedded one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None or ip in _NAT64_LOCAL:
            return False  # IPv4-mapped addresses are refused outright
        embedded = _embedded_v4(ip)
        if embedded is not None and not address_allowed(str(embedded)):
            return False
        if ip.is_site_local:
            return False
    return bool(ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                       or ip.is_private or ip.is_unspecified))


def _split(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url or len(url) > LIMITS["url_chars"]:
        raise ApiError("url_not_allowed", "the URL is missing or too long")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ApiError("url_not_allowed", f"the URL is malformed ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ApiError("url_not_allowed", "only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ApiError("url_not_allowed", "URLs with credentials are not allowed")
    host = parts.hostname
    if not host:
        raise ApiError("url_not_allowed", "the URL has no host")
    try:
        host = host.encode("idna").decode("ascii") if not _is_ip(host) else host
    except UnicodeError as exc:
        raise ApiError("url_not_allowed", "the host name is not valid") from exc
    if not _is_ip(host) and not _HOST_NAME.fullmatch(host):
        raise ApiError("url_not_allowed", "the host name is not valid (letters, digits, hyphens and dots only)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        return False


def resolve(url: str, *, allow: Iterable[tuple[str, int]] = (), resolver: Resolver = socket.getaddrinfo) -> Target:
    """Check a URL and resolve its host; every address must be allowed. Returns the one to connect to."""
    scheme, host, port, path = _split(url)
    allow = frozenset(allow)
    if _is_ip(host):
        addresses = [host.split("%", 1)[0]]
    else:
        try:
            infos = resolver(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise ApiError("fetch_failed", f"the host {host!r} could not be resolved",
                           retryable=exc.errno in (socket.EAI_AGAIN,)) from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise ApiError("fetch_failed", f"the host {host!r} has no address")
    for address in addresses:
        if (address, port) in allow:
            continue
        if not address_allowed(address):
            raise ApiError("url_not_allowed", "the URL's host is not a public address")
    return Target(scheme, host, port, path, addresses[0])


def _pool(target: Target, timeout: float) -> urllib3.HTTPConnectionPool:
    t = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(target.address, target.port, timeout=t, retries=False, maxsize=1,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED")
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=t, retries=False, maxsize=1)


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def fetch(url: str, *, max_bytes: int, timeout: float, allow: Iterable[tuple[str, int]] = (),
          resolver: Resolver = socket.getaddrinfo) -> Fetched:
    """GET an image URL under the rules above. Raises ApiError (url_not_allowed, fetch_failed, payload_too_large)."""
    deadline = time.monotonic() + timeout
    allow = frozenset(allow)
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = resolve(current, allow=allow, resolver=resolver)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApiError("fetch_failed", "fetching the image timed out", retryable=True)
        pool = _pool(target, remaining)
        headers = {"Host": _host_header(target), "User-Agent": USER_AGENT,
                   "Accept": "image/avif,image/webp,image/*;q=0.9,*/*;q=0.5", "Accept-Encoding": "identity"}
        try:
            response = pool.urlopen("GET", target.path, headers=headers, redirect=False, retries=False,
                                    preload_content=False, assert_same_host=False)
        except (Urllib3Error, OSError) as exc:
            pool.close()
            raise ApiError("fetch_failed", f"the image could not be fetched ({type(exc).__name__})", retryable=True) from exc
        try:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise ApiError("fetch_failed", f"redirect ({response.status}) without a Location")
                if hop == MAX_REDIRECTS:
                    raise ApiError("fetch_failed", f"more than {MAX_REDIRECTS} redirects")
                current = redirect_url(current, location)
                continue
            if response.status != 200:
                raise ApiError("fetch_failed", f"the image server answered HTTP {response.status}",
                               retryable=response.status >= 500 or response.status in (408, 429))
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise ApiError("payload_too_large", f"the image is larger than {max_bytes} bytes")
            data = _read(response, max_bytes, deadline)
            return Fetched(data, current, response.headers.get("Content-Type"), hop)
        finally:
            response.release_conn()
            response.close()
            pool.close()
    raise AssertionError("unreachable")


def redirect_url(current: str, location: str) -> str:
    """The URL a redirect's Location points to (checked again by ``resolve`` before it is fetched)."""
    try:
        return urljoin(current, location)
    except ValueError as exc:   # "http://[::1": urljoin splits it and raises (found by fuzzing, tests/test_fuzz.py)
        raise ApiError("fetch_failed", f"the image server redirected to a malformed URL ({exc})") from exc


def _read(response, max_bytes: int, deadline: float) -> bytes:
    chunks, total = [], 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise ApiError("fetch_failed", "fetching the image timed out", retryable=True)
            chunk = response.read1(65536)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise ApiError("payload_too_large", f"the image is larger than {max_bytes} bytes")
            chunks.append(chunk)
    except (Urllib3Error, OSError) as exc:
        raise ApiError("fetch_failed", f"reading the image failed ({type(exc).__name__})", retryable=True) from exc
    return b"".join(chunks)
