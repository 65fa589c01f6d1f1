import time

import server_support
from server_support import backend, backend_with  # noqa: F401

from gamma_detect.server import cli
from gamma_detect.server.keys import KeyStore
from stub_detector import image_bytes


def test_keys_optional_until_one_exists_then_required(backend):
    c = backend.client
    assert c.post("/v1/feedback", json={}).status_code == 400          # no key needed yet
    store = KeyStore(backend.connection, backend.settings)
    token, record = store.create("extension")
    assert token.startswith(f"gk_{record['id']}_") and len(token) > 40
    # stored hashed: the token appears nowhere in Redis
    for key in backend.connection.scan_iter(server_support.PREFIX + ":apikey*"):
        value = backend.connection.dump(key) or b""
        assert token.encode() not in value
    missing = c.get("/jobs/x")
    assert missing.status_code == 401 and missing.get_json()["code"] == "unauthorized"
    assert c.get("/jobs/x", headers={"Authorization": "Bearer gk_nope_nope"}).status_code == 401
    assert c.get("/jobs/x", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert c.get("/jobs/x", headers={"Authorization": f"Bearer {token}"}).status_code == 404   # authorised
    assert c.get("/healthz").status_code == 200 and c.get("/v1/openapi.json").status_code == 200
    assert [r["name"] for r in store.list()] == ["extension"] and "hash" not in store.list()[0]
    assert store.revoke(record["id"]) and not store.revoke("nope")
    assert c.get("/jobs/x", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert store.list()[0]["revoked_at"]


def test_keys_never_and_always_modes():
    never = backend_with(require_keys="never")
    try:
        KeyStore(never.connection, never.settings).create("k")
        assert never.client.get("/jobs/x").status_code == 404
    finally:
        never.stop()
    always = backend_with(require_keys="always")
    try:
        assert always.client.get("/jobs/x").status_code == 401
    finally:
        always.stop()
        server_support.delete_keys()


def test_rate_limit_per_key_with_retry_after():
    b = backend_with(rate_limit=2, rate_burst=3)
    try:
        store = KeyStore(b.connection, b.settings)
        slow, _ = store.create("slow")
        fast, _ = store.create("fast", rate=1000, burst=1000)
        data = image_bytes(seed=1)
        statuses = [b.upload(data, headers={"Authorization": f"Bearer {slow}"}).status_code for _ in range(5)]
        assert statuses[:3] == [202, 202, 202] and statuses[3:] == [429, 429]
        limited = b.upload(data, headers={"Authorization": f"Bearer {slow}"})
        assert limited.get_json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        # another key has its own budget
        assert all(b.upload(data, headers={"Authorization": f"Bearer {fast}"}).status_code == 202 for _ in range(10))
        # 2 requests/s refill: the slow key gets through again within a second or so
        server_support.eventually(lambda: b.upload(data, headers={"Authorization": f"Bearer {slow}"}).status_code
                                  == 202, timeout=5, interval=0.1, what="the rate limit refilling")
        # a scan costs one request per image
        big = b.client.post("/v1/scan", json={"image_urls": ["http://10.0.0.1/a.png"] * 5},
                            headers={"Authorization": f"Bearer {slow}"})
        assert big.status_code == 429
    finally:
        b.stop()
        server_support.delete_keys()


def test_anonymous_clients_limited_by_address():
    b = backend_with(rate_limit=1, rate_burst=2)
    try:
        codes = [b.client.post("/v1/feedback", json={}).status_code for _ in range(3)]
        assert codes == [400, 400, 429]
        other = b.client.post("/v1/feedback", json={}, environ_base={"REMOTE_ADDR": "127.0.0.9"})
        assert other.status_code == 400
    finally:
        b.stop()
        server_support.delete_keys()


def test_keys_cli(monkeypatch, capsys, backend):
    monkeypatch.setenv("REDIS_URL", backend.settings.redis_url)
    assert cli.keys_main(["create", "crawler", "--rate", "5"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("gk_")
    assert cli.keys_main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "crawler" in listing and token not in listing
    key_id = token.split("_")[1]
    assert cli.keys_main(["revoke", key_id]) == 0 and cli.keys_main(["revoke", "nope"]) == 1
