import socket
import time

import pytest
import server_support
from server_support import image_server  # noqa: F401

from gamma_detect.server.config import Settings
from gamma_detect.server.errors import ApiError
from gamma_detect.server.fetch import MAX_REDIRECTS, address_allowed, fetch, resolve
from stub_detector import image_bytes

PNG = image_bytes(80, 80)


def code_of(url, **kw) -> str:
    kw.setdefault("max_bytes", 1_000_000)
    kw.setdefault("timeout", 3)
    with pytest.raises(ApiError) as info:
        fetch(url, **kw)
    return info.value.code


def allow(server):
    return {("127.0.0.1", server.port)}


def test_test_allowance_is_off_by_default(image_server):
    assert Settings().fetch_test_allow == "" and Settings().test_allow == frozenset()
    assert Settings.from_env({}).test_allow == frozenset()
    url = image_server.add("/a.png", PNG)
    assert code_of(url) == "url_not_allowed"          # the loopback server is refused...
    assert fetch(url, max_bytes=10**6, timeout=3, allow=allow(image_server)).data == PNG   # ...unless allowed


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.1", "10.1.2.3", "172.16.5.4", "192.168.0.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8",
    "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1", "fec0::1"])
def test_non_global_addresses_refused(address):
    assert not address_allowed(address)
    host = f"[{address}]" if ":" in address else address
    assert code_of(f"http://{host}/x.png") == "url_not_allowed"


def test_global_addresses_allowed():
    for address in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert address_allowed(address)


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/", "data:image/png;base64,AA",
                                 "javascript:alert(1)", "http://user:pw@example.com/a.png", "http://@example.com/a.png",
                                 "http:///a.png", "", "http://[::1/a.png"])
def test_bad_urls_refused(url):
    assert code_of(url) == "url_not_allowed"


def test_name_resolving_to_private_refused():
    def resolver(host, port, **kw):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]   # one bad address is enough
    with pytest.raises(ApiError) as info:
        resolve("http://mixed.example/a.png", resolver=resolver)
    assert info.value.code == "url_not_allowed"
    assert code_of("http://localhost:1/a.png") == "url_not_allowed"


def test_connects_to_the_checked_address(image_server):
    """The host is resolved once per hop and the connection goes to that address (no re-resolution)."""
    url = image_server.add("/a.png", PNG)
    calls = []

    def resolver(host, port, **kw):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    # `rebind.invalid` resolves nowhere else: success proves we connected to the address we checked.
    fetched = fetch(f"http://rebind.invalid:{image_server.port}/a.png", max_bytes=10**6, timeout=3,
                    allow=allow(image_server), resolver=resolver)
    assert fetched.data == PNG and calls == ["rebind.invalid"]
    assert image_server.seen[-1]["headers"]["Host"] == f"rebind.invalid:{image_server.port}"
    del url


def test_redirects_rechecked(image_server):
    other = server_support.ImageServer()   # not in the allowance: a redirect there must be refused
    try:
        target = other.add("/b.png", PNG)
        image_server.add("/r", b"", status=302, headers={"Location": target})
        assert code_of(image_server.url("/r"), allow=allow(image_server)) == "url_not_allowed"
        assert other.seen == []
        image_server.add("/meta", b"", status=301, headers={"Location": "http://169.254.169.254/latest/meta-data"})
        assert code_of(image_server.url("/meta"), allow=allow(image_server)) == "url_not_allowed"
    finally:
        other.close()


def test_redirect_limit(image_server):
    image_server.add("/ok.png", PNG)
    for i in range(MAX_REDIRECTS + 1):
        image_server.add(f"/r{i}", b"", status=302, headers={"Location": f"/r{i + 1}" if i < MAX_REDIRECTS else "/ok.png"})
    image_server.routes[f"/r{MAX_REDIRECTS}"] = (302, {"Location": "/ok.png"}, b"")
    # r1 -> r2 -> r3 -> ok: three redirects are fine
    assert fetch(image_server.url("/r1"), max_bytes=10**6, timeout=3, allow=allow(image_server)).redirects == 3
    # r0 -> r1 -> r2 -> r3 -> ok: four are not
    assert code_of(image_server.url("/r0"), allow=allow(image_server)) == "fetch_failed"


def test_no_cookies_or_credentials_forwarded(image_server):
    image_server.add("/ok.png", PNG)
    image_server.add("/set", b"", status=302, headers={"Location": "/ok.png", "Set-Cookie": "session=secret; Path=/"})
    fetch(image_server.url("/set"), max_bytes=10**6, timeout=3, allow=allow(image_server))
    last = image_server.seen[-1]["headers"]
    assert image_server.seen[-1]["path"] == "/ok.png"
    assert "Cookie" not in last and "Authorization" not in last
    assert set(last) <= {"Host", "User-Agent", "Accept", "Accept-Encoding", "Connection"}


def test_byte_limit(image_server):
    big = image_server.add("/big.png", b"x" * 200_000)
    assert code_of(big, max_bytes=100_000, allow=allow(image_server)) == "payload_too_large"

    def chunked(handler):   # no Content-Length: the limit applies while reading
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(30):
            handler.wfile.write(b"2710\r\n" + b"y" * 10000 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")
    image_server.add("/chunked", chunked)
    assert code_of(image_server.url("/chunked"), max_bytes=100_000, allow=allow(image_server)) == "payload_too_large"


def test_timeouts(image_server):
    def slow(handler):
        time.sleep(2.5)
        handler.send_response(200)
        handler.end_headers()
    image_server.add("/slow", slow)
    start = time.monotonic()
    assert code_of(image_server.url("/slow"), timeout=1, allow=allow(image_server)) == "fetch_failed"
    assert time.monotonic() - start < 2.4

    def drip(handler):   # each byte in time, the whole body too slow
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"z")
            handler.wfile.flush()
            time.sleep(0.05)
    image_server.add("/drip", drip)
    start = time.monotonic()
    assert code_of(image_server.url("/drip"), timeout=1, allow=allow(image_server)) == "fetch_failed"
    assert time.monotonic() - start < 3


def test_http_errors(image_server):
    image_server.add("/gone", b"nope", status=404)
    with pytest.raises(ApiError) as info:
        fetch(image_server.url("/gone"), max_bytes=10**6, timeout=3, allow=allow(image_server))
    assert info.value.code == "fetch_failed" and not info.value.retryable
    image_server.add("/busy", b"", status=503)
    with pytest.raises(ApiError) as info:
        fetch(image_server.url("/busy"), max_bytes=10**6, timeout=3, allow=allow(image_server))
    assert info.value.code == "fetch_failed" and info.value.retryable
    closed = server_support.free_port()
    with pytest.raises(ApiError) as info:
        fetch(f"http://127.0.0.1:{closed}/x", max_bytes=10**6, timeout=3, allow={("127.0.0.1", closed)})
    assert info.value.code == "fetch_failed" and info.value.retryable
