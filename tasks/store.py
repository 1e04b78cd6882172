"""Redis layout for jobs: job records, artifacts, uploads, saved latents, and the job events stream.

Keys (prefix `dnebot`, or env DNEBOT_NAMESPACE — tests use it to share a Redis DB without crosstalk):
  <ns>:job:<job_id>             hash: kind, spec (JSON), origin (JSON), scope, state, message, artifact,
                                created_at, updated_at, deliveries
  <ns>:artifact:<job_id>        PNG bytes, TTL ARTIFACT_TTL_S
  <ns>:upload:<job_id>          photo bytes for /encode, TTL UPLOAD_TTL_S
  <ns>:latents:<scope>          hash: face name → w as .npy bytes (loaded with allow_pickle=False)
  <ns>:latent-models:<scope>    hash: face name → the model whose W space the w belongs to
  <ns>:events                   stream: job_id, state ('done'|'failed'), message

Sync functions take a redis.Redis; the async ones (what the bot needs) take a redis.asyncio.Redis.
Image bytes live here, never in Celery's result backend.
"""
from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass

import numpy as np

ARTIFACT_TTL_S = 6 * 3600        # the bot posts within seconds; the slack covers a bot restart
UPLOAD_TTL_S = 3600              # longer than the slowest /encode waits in the queue
JOB_RECORD_TTL_S = 7 * 24 * 3600  # kept a while after the job ends, for support questions
EVENTS_MAXLEN = 10_000


def namespace() -> str:
    return os.environ.get("DNEBOT_NAMESPACE", "dnebot")


def job_key(job_id: str) -> str:
    return f"{namespace()}:job:{job_id}"


def artifact_key(job_id: str) -> str:
    return f"{namespace()}:artifact:{job_id}"


def upload_key(job_id: str) -> str:
    return f"{namespace()}:upload:{job_id}"


def latents_key(scope: str) -> str:
    return f"{namespace()}:latents:{scope}"


def latent_models_key(scope: str) -> str:
    return f"{namespace()}:latent-models:{scope}"


def events_stream() -> str:
    return f"{namespace()}:events"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode_hash(raw: dict) -> dict:
    return {_text(k): _text(v) for k, v in raw.items()}


# ---- job records ---------------------------------------------------------------------------------------

def job_record(kind: str, spec: dict, origin: dict, scope: str | None) -> dict:
    now = f"{time.time():.3f}"
    return {"kind": kind, "spec": json.dumps(spec), "origin": json.dumps(origin), "scope": scope or "",
            "state": "queued", "message": "", "artifact": "", "created_at": now, "updated_at": now}


def create_job(redis, job_id: str, kind: str, spec: dict, origin: dict, scope: str | None) -> None:
    redis.hset(job_key(job_id), mapping=job_record(kind, spec, origin, scope))


def get_job(redis, job_id: str) -> dict | None:
    raw = redis.hgetall(job_key(job_id))
    return _decode_hash(raw) if raw else None


def count_delivery(redis, job_id: str) -> int:
    """How many times a worker has started this job (a worker killed mid-job gets it redelivered)."""
    return int(redis.hincrby(job_key(job_id), "deliveries", 1))


def mark_running(redis, job_id: str) -> None:
    redis.hset(job_key(job_id), mapping={"state": "running", "updated_at": f"{time.time():.3f}"})


def finish_job(redis, job_id: str, state: str, message: str, png: bytes | None = None) -> None:
    """Store the artifact (if any), record the outcome, and emit the event, in one transaction."""
    assert state in ("done", "failed"), state
    pipe = redis.pipeline(transaction=True)
    if png is not None:
        pipe.set(artifact_key(job_id), png, ex=ARTIFACT_TTL_S)
    pipe.hset(job_key(job_id), mapping={"state": state, "message": message, "updated_at": f"{time.time():.3f}",
                                       "artifact": artifact_key(job_id) if png is not None else ""})
    pipe.expire(job_key(job_id), JOB_RECORD_TTL_S)
    pipe.xadd(events_stream(), {"job_id": job_id, "state": state, "message": message},
              maxlen=EVENTS_MAXLEN, approximate=True)
    pipe.execute()


def get_artifact(redis, job_id: str) -> bytes | None:
    return redis.get(artifact_key(job_id))


# ---- uploads --------------------------------------------------------------------------------------------

def put_upload(redis, job_id: str, data: bytes) -> str:
    redis.set(upload_key(job_id), data, ex=UPLOAD_TTL_S)
    return upload_key(job_id)


# ---- saved latents --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Latent:
    ws: np.ndarray    # float32 [num_ws, w_dim]
    model: str        # the model whose W space it lives in (the family base it was projected into)


def latent_to_bytes(ws: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(ws, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def latent_from_bytes(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def save_latent(redis, scope: str, name: str, ws: np.ndarray, model: str) -> bool:
    """Returns whether a face was already saved under the name (and is now replaced)."""
    pipe = redis.pipeline(transaction=True)
    pipe.hset(latents_key(scope), name, latent_to_bytes(ws))
    pipe.hset(latent_models_key(scope), name, model)
    added, _ = pipe.execute()
    return added == 0


def load_latent(redis, scope: str, name: str) -> Latent | None:
    pipe = redis.pipeline(transaction=True)
    pipe.hget(latents_key(scope), name)
    pipe.hget(latent_models_key(scope), name)
    data, model = pipe.execute()
    if data is None:
        return None
    return Latent(latent_from_bytes(data), _text(model) if model is not None else "")


def latent_names(redis, scope: str) -> list[str]:
    return sorted(_text(k) for k in redis.hkeys(latents_key(scope)))


async def put_upload_async(redis, job_id: str, data: bytes) -> str:
    await redis.set(upload_key(job_id), data, ex=UPLOAD_TTL_S)
    return upload_key(job_id)


async def get_artifact_async(redis, job_id: str) -> bytes | None:
    return await redis.get(artifact_key(job_id))


async def get_job_async(redis, job_id: str) -> dict | None:
    raw = await redis.hgetall(job_key(job_id))
    return _decode_hash(raw) if raw else None


async def saved_latent_model(redis, scope: str, name: str) -> str | None:
    """For the bot's check before queueing a blend: the model a saved face belongs to, or None."""
    if not await redis.hexists(latents_key(scope), name):
        return None
    model = await redis.hget(latent_models_key(scope), name)
    return _text(model) if model is not None else ""


# ---- job events -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobEvent:
    entry_id: str
    job_id: str
    state: str      # 'done' | 'failed'
    message: str


def _events(entries) -> list[JobEvent]:
    events = []
    for entry_id, fields in entries:
        if fields is None:   # a pending entry whose data was trimmed from the stream
            events.append(JobEvent(_text(entry_id), "", "", ""))
            continue
        f = _decode_hash(fields)
        events.append(JobEvent(_text(entry_id), f.get("job_id", ""), f.get("state", ""), f.get("message", "")))
    return events


def last_event_id(redis) -> str:
    """The id to read after, taken before submitting, so a quick job's event can't be missed."""
    newest = redis.xrevrange(events_stream(), count=1)
    return _text(newest[0][0]) if newest else "0-0"


def wait_for_event(redis, job_id: str, after_id: str, timeout_s: float) -> JobEvent | None:
    """Block (synchronously, for local mode and tests) until job_id's event appears, or time out."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        reply = redis.xread({events_stream(): after_id}, block=max(1, int(min(left, 1.0) * 1000)), count=100)
        for _, entries in reply or []:
            for event in _events(entries):
                after_id = event.entry_id
                if event.job_id == job_id:
                    return event
    return None


async def ensure_event_group(redis, group: str, start_id: str = "$") -> None:
    """Create the consumer group once ('$': events from now on). An existing group is left as it is."""
    from redis.exceptions import ResponseError

    try:
        await redis.xgroup_create(events_stream(), group, id=start_id, mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


async def read_events(redis, group: str, consumer: str, block_ms: int = 5000, *, pending: bool = False,
                      count: int = 16) -> list[JobEvent]:
    """XREADGROUP: new events (pending=False), or this consumer's delivered-but-unacked ones (pending=True)."""
    reply = await redis.xreadgroup(group, consumer, {events_stream(): "0" if pending else ">"},
                                   count=count, block=None if pending else block_ms)
    return [e for _, entries in reply or [] for e in _events(entries)]


async def ack_event(redis, group: str, event: JobEvent) -> None:
    await redis.xack(events_stream(), group, event.entry_id)


class EventReader:
    """The bot's one consumer: after a restart it first re-reads what it had taken but not acked."""

    def __init__(self, redis, group: str, consumer: str):
        self.redis, self.group, self.consumer = redis, group, consumer
        self._draining_pending = True

    async def read(self, block_ms: int = 5000) -> list[JobEvent]:
        if self._draining_pending:
            await ensure_event_group(self.redis, self.group)
            events = await read_events(self.redis, self.group, self.consumer, pending=True)
            if events:
                return events  # acked ones drop out of the pending list, so this drains
            self._draining_pending = False
        return await read_events(self.redis, self.group, self.consumer, block_ms)

    async def ack(self, event: JobEvent) -> None:
        await ack_event(self.redis, self.group, event)
