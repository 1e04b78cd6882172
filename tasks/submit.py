"""Submitting a job: the one path both the bot and local mode take onto the queue.

The job record is written first, then the Celery task is sent by name with task_id = job_id, so the bot
never imports task bodies (or anything that could pull in torch).
"""
from __future__ import annotations

import asyncio
import uuid

from tasks import store
from tasks.celery_app import TASK_NAMES, app
from tasks.specs import SPEC_TYPES


def new_job_id() -> str:
    return uuid.uuid4().hex


def _check(kind: str, spec) -> dict:
    if kind not in SPEC_TYPES or not isinstance(spec, SPEC_TYPES[kind]):
        raise TypeError(f"a {kind!r} job needs a {SPEC_TYPES.get(kind, object).__name__}, got {type(spec).__name__}")
    return spec.to_dict()


def _send(kind: str, job_id: str, spec: dict, scope: str | None) -> None:
    app.send_task(TASK_NAMES[kind], args=[job_id, spec], kwargs={"scope": scope}, task_id=job_id)


def submit_job(redis, kind: str, spec, origin: dict, *, scope: str | None = None, job_id: str | None = None) -> str:
    """kind: 'waifu' | 'blend' | 'encode'. origin: who and where (guild, channel, user, ...; JSON-able).
    scope: whose saved faces a blend reads and an encode writes ('guild:<id>', 'local:<user>')."""
    spec_dict = _check(kind, spec)
    job_id = job_id or new_job_id()
    store.create_job(redis, job_id, kind, spec_dict, origin, scope)
    _send(kind, job_id, spec_dict, scope)
    return job_id


async def submit_job_async(redis, kind: str, spec, origin: dict, *, scope: str | None = None,
                           job_id: str | None = None) -> str:
    """The bot's variant: redis is a redis.asyncio client; the broker send (a short blocking kombu call)
    runs in a worker thread so the event loop never waits on it."""
    spec_dict = _check(kind, spec)
    job_id = job_id or new_job_id()
    await redis.hset(store.job_key(job_id), mapping=store.job_record(kind, spec_dict, origin, scope))
    await asyncio.to_thread(_send, kind, job_id, spec_dict, scope)
    return job_id
