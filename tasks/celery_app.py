"""The Celery app: one settings module for every worker and for the bot's sends.

`celery -A tasks.celery_app worker -Q gpu.fast,gpu.slow -P solo` (or `dnebot worker`) runs it.
Importing this module touches neither torch nor CUDA: task bodies load models lazily inside the worker
process, so a prefork parent never initialises CUDA before it forks (notes §B).
"""
from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

FAST_QUEUE = "gpu.fast"   # /waifu, /blend: seconds
SLOW_QUEUE = "gpu.slow"   # /encode: minutes, so it never sits in front of a /waifu
TASK_NAMES = {"waifu": "dnebot.generate", "blend": "dnebot.blend", "encode": "dnebot.encode"}

# The longest job (a CPU /encode) must finish well inside this, or Redis hands it to a second worker.
VISIBILITY_TIMEOUT_S = 4 * 3600
FAST_SOFT_LIMIT_S, SLOW_SOFT_LIMIT_S = 10 * 60, 60 * 60
MAX_DELIVERIES = 3   # a job that kills its worker this often is failed instead of redelivered forever


def redis_url() -> str:
    return os.environ.get("DNEBOT_REDIS_URL") or DEFAULT_REDIS_URL


def kombu_url(url: str) -> str:
    """redis-py spells a unix socket unix:///path?db=N; kombu and Celery spell it redis+socket:///path?db=N."""
    return "redis+socket://" + url[len("unix://"):] if url.startswith("unix://") else url


def _transport_options() -> dict:
    options = {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    namespace = os.environ.get("DNEBOT_NAMESPACE")
    if namespace:  # keeps tests' queues apart when they share a Redis DB
        options["global_keyprefix"] = f"{namespace}:"
    return options


def settings(url: str) -> dict:
    return dict(
        broker_url=kombu_url(url),
        result_backend=kombu_url(url),
        dnebot_redis_url=url,
        # No pickle anywhere on the broker.
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_queues=[Queue(FAST_QUEUE), Queue(SLOW_QUEUE)],
        task_default_queue=FAST_QUEUE,
        task_routes={TASK_NAMES["waifu"]: {"queue": FAST_QUEUE}, TASK_NAMES["blend"]: {"queue": FAST_QUEUE},
                     TASK_NAMES["encode"]: {"queue": SLOW_QUEUE}},
        # Each worker process reserves only the job it runs, so a quick job never waits behind a slow one.
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,   # counted in tasks.jobs: failed after MAX_DELIVERIES
        # All three, because the shortest visibility timeout wins (Celery's redis caveats).
        broker_transport_options=_transport_options(),
        result_backend_transport_options=_transport_options(),
        visibility_timeout=VISIBILITY_TIMEOUT_S,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Results are small dicts (the artifact key); images live under their own keys with a TTL.
        result_expires=24 * 3600,
        task_track_started=True,
        # Time limits (prefork only; the solo pool can't enforce them).
        task_soft_time_limit=FAST_SOFT_LIMIT_S, task_time_limit=FAST_SOFT_LIMIT_S + 60,
        task_annotations={TASK_NAMES["encode"]: {"soft_time_limit": SLOW_SOFT_LIMIT_S,
                                                 "time_limit": SLOW_SOFT_LIMIT_S + 60}},
        # A prefork child that loads a model in worker_process_init needs longer than the 4 s default.
        worker_proc_alive_timeout=120,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )


def make_app(url: str | None = None) -> Celery:
    app = Celery("dnebot", include=["tasks.jobs"])
    app.conf.update(settings(url or redis_url()))
    return app


app = make_app()


def use_redis(url: str) -> None:
    """Point the app at another Redis (local mode's embedded one, a test's namespace)."""
    app.conf.update(settings(url))
    # The app keeps a handle on kombu's pools for the URL and key prefix it first connected with: forget it, so
    # the next send goes to these settings instead of silently to the previous Redis or namespace. (kombu's
    # global pools are keyed by URL and transport options, so the old pool stays valid for whoever holds it.)
    app._pool = None
    app.amqp._producer_pool = None
