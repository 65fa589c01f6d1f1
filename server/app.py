"""The Flask application factory: ``create_app()`` (gunicorn: ``gamma_detect.server.app:create_app()``)."""

from __future__ import annotations

import logging
import time

import redis.exceptions
from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings, configure_rq
from .errors import ApiError

log = logging.getLogger("gamma.server.api")

PUBLIC = ("health.", "v1.openapi")   # endpoints that need no key and count against no limit
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                 415: "unsupported_media_type", 400: "bad_request"}


def create_app(settings: Settings | None = None, *, connection=None) -> Flask:
    settings = settings or Settings.from_env()
    configure_rq(settings)
    if not settings.redis_url and connection is None:
        raise RuntimeError("create_app needs REDIS_URL (or use `gamma serve`, which starts an embedded Redis)")
    app = Flask("gamma_detect.server")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 64 * 1024   # multipart overhead
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes + 64 * 1024
    app.json.sort_keys = False
    app.json.compact = True
    if settings.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trust_proxy, x_proto=settings.trust_proxy)
    from .service import Service  # imports RQ: after configure_rq

    svc = Service(settings, connection)
    app.extensions["gamma"] = svc

    from .api import health, jobs_bp, v1
    from .model_files import model_bp

    app.register_blueprint(v1)
    app.register_blueprint(model_bp)
    app.register_blueprint(jobs_bp)
    app.register_blueprint(health)

    origins = set(settings.origins)

    @app.before_request
    def _before():
        g.started = time.perf_counter()
        g.principal = None
        if request.method == "OPTIONS":
            return app.response_class(status=204)
        endpoint = request.endpoint or ""
        if endpoint.startswith(PUBLIC):
            return None
        g.principal = svc.keys.authenticate(request.headers.get("Authorization"), request.remote_addr or "-")
        return None

    @app.after_request
    def _after(response):
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response.headers["Access-Control-Expose-Headers"] = "Retry-After, Location"
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers.add("Vary", "Origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        svc.metrics.inc("gamma_http_requests_total",
                        {"endpoint": endpoint, "method": request.method, "status": response.status_code})
        svc.metrics.observe("gamma_http_request_duration_seconds", elapsed, {"endpoint": endpoint})
        return response

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        response = jsonify(error.to_dict())
        response.status_code = error.status
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(int(error.retry_after))
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error):
        return _api_error(ApiError("payload_too_large", f"the request is larger than {settings.max_upload_bytes} bytes"))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = _STATUS_CODES.get(error.code or 500, "bad_request" if (error.code or 500) < 500 else "internal_error")
        response = _api_error(ApiError(code, error.description if code == "bad_request" else None, status=error.code))
        for name, value in error.get_headers():   # e.g. a 405's Allow (RFC 9110), which the JSON body must keep
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(error):
        log.warning("Redis unavailable: %s", error)
        return _api_error(ApiError("service_unavailable", "the queue is unavailable; retry shortly", retry_after=1))

    @app.errorhandler(Exception)
    def _internal(error):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _api_error(ApiError("internal_error"))

    return app
