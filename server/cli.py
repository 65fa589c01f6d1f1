"""`gamma serve | worker | scan | keys | feedback | loadtest`: thin layers over functions tests call."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from .config import Settings, configure_logging, configure_rq
from .malloc import tune_malloc


def _settings() -> Settings:
    """The service's settings, with RQ's key prefix configured before anything imports RQ."""
    settings = Settings.from_env()
    configure_rq(settings)
    return settings


def _connection(settings: Settings):
    from .redisconn import connect, ensure_url

    settings = ensure_url(settings)
    return settings, connect(settings.redis_url)


# --------------------------------------------------------------------------- serve
def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gamma serve", description=(
        "Run the HTTP API. Without REDIS_URL: an embedded Redis (append-only, in GAMMA_DATA_DIR) and its worker "
        "processes (GAMMA_WORKERS), i.e. the whole backend in one command. With REDIS_URL: gunicorn serving the "
        "API only; run `gamma worker` beside it."))
    parser.add_argument("--host", default=os.environ.get("GAMMA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GAMMA_PORT", "8000")))
    args = parser.parse_args(argv)
    settings = _settings()
    configure_logging(settings)
    tune_malloc()
    if settings.embedded:
        return serve_embedded(settings, args.host, args.port)
    from .redisconn import check_persistence, connect

    check_persistence(connect(settings.redis_url))
    return serve_gunicorn(settings, args.host, args.port)


def _model_loads(settings: Settings, prog: str) -> bool:
    """Load the model once before any worker starts: one clear error here, not a crash loop in every worker."""
    from . import jobs
    from .processes import MODEL_ERRORS

    try:
        jobs.load_model(settings)
    except MODEL_ERRORS as exc:
        print(f"{prog}: the model cannot be loaded: {exc}", file=sys.stderr)
        return False
    return True


def serve_embedded(settings: Settings, host: str, port: int, ready: threading.Event | None = None) -> int:
    from werkzeug.serving import make_server

    from .app import create_app
    from .processes import WorkerProcesses, worker_count
    from .redisconn import ensure_url

    settings = ensure_url(settings)
    if not _model_loads(settings, "gamma serve"):
        return 2
    app = create_app(settings)
    server = make_server(host, port, app, threaded=True)
    http = threading.Thread(target=server.serve_forever, name="gamma-http", daemon=True)
    http.start()
    logging.getLogger("gamma.server").info("serving on http://%s:%d (embedded Redis, %d worker processes)", host,
                                           server.port, worker_count(settings))
    if ready is not None:
        ready.set()
    try:
        WorkerProcesses(settings).run()
    finally:
        server.shutdown()
    return 0


def serve_gunicorn(settings: Settings, host: str, port: int) -> int:
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):
        def load_config(self):
            options = {"bind": f"{host}:{port}", "workers": settings.web_concurrency, "threads": settings.web_threads,
                       "worker_class": "gthread", "timeout": max(60, settings.longpoll_max + 30),
                       "graceful_timeout": 30, "keepalive": 15, "accesslog": None,
                       "loglevel": settings.log_level.lower()}
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from .app import create_app

            return create_app(settings)

    Application().run()
    return 0


# --------------------------------------------------------------------------- worker
def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gamma worker", description=(
        "Run batching inference workers (GAMMA_WORKERS processes, default one per core; each loads the model "
        "once, no fork per job). Needs REDIS_URL."))
    parser.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: random)")
    parser.add_argument("--crawl", action="store_true", help="work the crawl queue instead (`gamma scan --enqueue`)")
    args = parser.parse_args(argv)
    settings = _settings()
    configure_logging(settings)
    tune_malloc()
    if settings.embedded:
        print("gamma worker: set REDIS_URL (`gamma serve` without REDIS_URL runs its own worker)", file=sys.stderr)
        return 2
    if args.crawl:
        from .crawl_worker import run_crawl_worker

        if not _model_loads(settings, "gamma worker --crawl"):
            return 2
        run_crawl_worker(settings, burst=args.burst, name=args.name)
        return 0
    from .processes import WorkerProcesses

    if not _model_loads(settings, "gamma worker"):
        return 2
    WorkerProcesses(settings, burst=args.burst, name=args.name).run()
    return 0


# --------------------------------------------------------------------------- keys
def keys_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gamma keys", description="Manage API keys (stored hashed in Redis).")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("name")
    create.add_argument("--rate", type=float, default=None, help="requests/s for this key (default GAMMA_RATE_LIMIT)")
    create.add_argument("--burst", type=int, default=None, help="burst for this key (default GAMMA_RATE_BURST)")
    listing = sub.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument("--json", action="store_true")
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    args = parser.parse_args(argv)
    from .keys import KeyStore

    settings, connection = _connection(_settings())
    store = KeyStore(connection, settings)
    if args.action == "create":
        token, record = store.create(args.name, args.rate, args.burst)
        print(token)
        print(f"created key {record['id']} ({record['name']}); it is shown only now", file=sys.stderr)
        return 0
    if args.action == "list":
        records = store.list()
        if args.json:
            print(json.dumps(records, indent=2))
        else:
            for r in records:
                state = "revoked" if r.get("revoked_at") else "active"
                print(f"{r['id']}  {state:<7}  {r.get('prefix', '')}...  {r['name']}")
        return 0
    if not store.revoke(args.id):
        print(f"gamma keys: no key {args.id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.id}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- feedback
def feedback_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gamma feedback", description="Export user feedback as JSONL.")
    sub = parser.add_subparsers(dest="action", required=True)
    export = sub.add_parser("export", help="write feedback entries as JSON lines")
    export.add_argument("--out", default="-", help="file to write (default: stdout)")
    export.add_argument("--after", default="-", help="only entries after this id (resume an earlier export)")
    args = parser.parse_args(argv)
    from . import feedback

    settings, connection = _connection(_settings())
    if args.out == "-":
        count = feedback.export(connection, settings, sys.stdout, args.after)
    else:
        with open(args.out, "w", encoding="utf-8") as out:
            count = feedback.export(connection, settings, out, args.after)
    print(f"exported {count} feedback entries", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- scan / loadtest
def scan_main(argv: list[str]) -> int:
    from .scan import main

    return main(argv)


if __name__ == "__main__":  # pragma: no cover
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
