"""API keys (stored hashed) and per-key rate limits, both in Redis.

A key looks like ``gk_<id>_<secret>``; Redis holds only its SHA-256 (a key is 256 random bits,
so a fast hash is enough) and a record ``{id, name, created_at, revoked_at, rate, burst}``.
With ``GAMMA_REQUIRE_KEYS=auto`` (the default) keys are optional until the first one is created
(a local single-user server), then required.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from dataclasses import dataclass

from .config import Settings
from .errors import ApiError

# Generic cell rate algorithm: one key per client, holding the theoretical arrival time (ms).
_GCRA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = 1000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
"""


@dataclass(frozen=True)
class Principal:
    id: str              # key id, or "anon:<address>"
    name: str
    rate: float
    burst: int
    authenticated: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    def __init__(self, connection, settings: Settings):
        self.connection = connection
        self.settings = settings
        self._records = settings.key("apikeys")           # hash: id -> record JSON
        self._active = settings.key("apikeys", "active")  # set of active ids
        self._gcra = connection.register_script(_GCRA)

    def _by_hash(self, digest: str) -> str:
        return self.settings.key("apikey", digest)

    # ------------------------------------------------------------------ management (CLI)
    def create(self, name: str, rate: float | None = None, burst: int | None = None) -> tuple[str, dict]:
        key_id = secrets.token_hex(4)
        token = f"gk_{key_id}_{secrets.token_urlsafe(32)}"
        record = {"id": key_id, "name": name, "created_at": time.time(), "revoked_at": None,
                  "rate": rate, "burst": burst, "prefix": token[:11]}
        blob = json.dumps(record)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(self._records, key_id, json.dumps({**record, "hash": _hash(token)}))
            pipe.set(self._by_hash(_hash(token)), blob)
            pipe.sadd(self._active, key_id)
            pipe.execute()
        return token, record

    def list(self) -> list[dict]:
        records = [json.loads(v) for v in self.connection.hvals(self._records)]
        for record in records:
            record.pop("hash", None)
        return sorted(records, key=lambda r: r["created_at"])

    def revoke(self, key_id: str) -> bool:
        raw = self.connection.hget(self._records, key_id)
        if not raw:
            return False
        record = json.loads(raw)
        record["revoked_at"] = record.get("revoked_at") or time.time()
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(self._records, key_id, json.dumps(record))
            pipe.delete(self._by_hash(record["hash"]))
            pipe.srem(self._active, key_id)
            pipe.execute()
        return True

    # ------------------------------------------------------------------ request path
    def authenticate(self, authorization: str | None, address: str) -> Principal:
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise ApiError("unauthorized", "use `Authorization: Bearer <key>`")
            token = value.strip()
        mode = self.settings.require_keys
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.scard(self._active)
            pipe.get(self._by_hash(_hash(token)) if token else self._by_hash("-"))
            active, raw = pipe.execute()
        if token:
            if not raw:
                raise ApiError("unauthorized", "unknown or revoked API key")
            record = json.loads(raw)
            return Principal(record["id"], record.get("name", ""),
                             self.settings.rate_limit if record.get("rate") is None else float(record["rate"]),
                             self.settings.rate_burst if record.get("burst") is None else int(record["burst"]), True)
        required = mode == "always" or (mode == "auto" and active > 0)
        if required:
            raise ApiError("unauthorized")
        return Principal(f"anon:{address}", "", self.settings.rate_limit, self.settings.rate_burst, False)

    def charge(self, principal: Principal, cost: int = 1) -> None:
        """Take `cost` requests from the principal's budget, or raise rate_limited with Retry-After."""
        if principal.rate <= 0:
            return
        burst = max(principal.burst, cost, 1)
        allowed, wait_ms = self._gcra(keys=[self.settings.key("rl", principal.id)],
                                      args=[principal.rate, burst, cost])
        if not allowed:
            seconds = max(1, math.ceil(int(wait_ms) / 1000))
            raise ApiError("rate_limited", f"rate limit of {principal.rate:g}/s exceeded; retry in {seconds} s",
                           retry_after=seconds)
