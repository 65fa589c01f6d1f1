"""The HTTP service: Flask API, RQ jobs and a batching worker over the runtime.

Nothing here imports torch, ``export/`` or ``train/`` (import-linter checks it). RQ reads its Redis key
prefix from ``RQ_KEY_PREFIX`` once, when it is first imported: the entry points (the ``gamma`` commands,
``create_app``, ``run_worker``) call :func:`gamma_detect.server.config.configure_rq` first, so the API,
the workers and the CLI agree on every Redis key.
"""
