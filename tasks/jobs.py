"""Task bodies: unpack a spec, call models.service, store the PNG, emit the job's event. Nothing else.

Every job ends with exactly one event, 'done' or 'failed', so none is ever silently lost. models/ (and torch)
is imported inside the task functions only: importing this module in a prefork parent touches no CUDA.
"""
from __future__ import annotations

import logging

import numpy as np
import redis as redis_lib
from celery.exceptions import SoftTimeLimitExceeded

from tasks import store
from tasks.blend_recipe import lineage_warning
from tasks.celery_app import MAX_DELIVERIES, TASK_NAMES, app
from tasks.registry import current_registry
from tasks.specs import BlendSpec, EncodeSpec, InputError, WaifuSpec, check_saved_face

log = logging.getLogger(__name__)
_redis_clients: dict[str, redis_lib.Redis] = {}


def redis_client() -> redis_lib.Redis:
    url = app.conf.dnebot_redis_url
    if url not in _redis_clients:
        _redis_clients[url] = redis_lib.Redis.from_url(url)
    return _redis_clients[url]


def internal_error_message(job_id: str) -> str:
    return f"something went wrong on the worker (job {job_id})"


def _png(rgb: np.ndarray) -> bytes:
    from models.render import png_bytes
    return png_bytes(rgb)


def render_waifu(spec: WaifuSpec, scope: str | None, redis) -> tuple[bytes, str]:
    from models import service
    entry = current_registry().get(spec.model)
    rgb = service.render_waifu(str(entry.path), spec.seed, spec.psi, spec.noise_mode, spec.class_index)
    return _png(rgb), f"{entry.name} · seed {spec.seed} · psi {spec.psi:g}"


def source_ws(spec: BlendSpec, scope: str | None, redis, registry) -> np.ndarray:
    """The face to blend: a seed of the family's base model, or a w saved by /encode in this scope."""
    from models import service
    base = registry.base_for(spec.recipe[0][0])
    if spec.source_seed is not None:
        return service.base_ws_for_seed(str(base.path), spec.source_seed, spec.psi)
    latent = store.load_latent(redis, scope, spec.source_name) if scope else None
    check_saved_face(spec, registry, latent.model if latent is not None else None)
    return latent.ws


def render_blend(spec: BlendSpec, scope: str | None, redis) -> tuple[bytes, str]:
    from models import service
    registry = current_registry()
    recipe = [(str(registry.get(name).path), percent / 100.0) for name, percent in spec.recipe]
    ws = source_ws(spec, scope, redis, registry)
    rgb = service.render_blend(recipe, ws)
    summary = f"{spec.source} · {spec.recipe_text}"
    warning = lineage_warning(spec.recipe, registry)
    if warning:
        log.warning("job blends %s anyway: %s", spec.recipe_text, warning)
    return _png(rgb), f"{summary} · {warning}" if warning else summary


def render_encode(spec: EncodeSpec, scope: str | None, redis) -> tuple[bytes, str]:
    from models import service
    from tasks.photo import decode_photo
    if not scope:
        raise InputError("faces can only be saved in a server or in local mode")
    data = redis.get(spec.photo_key)
    if data is None:
        raise InputError("the photo expired before a worker got to it; send /encode again")
    photo = decode_photo(data)
    entry = current_registry().get(spec.model)
    ws, projection = service.encode_photo(str(entry.path), photo, spec.steps)
    replaced = store.save_latent(redis, scope, spec.name, ws, entry.name)
    redis.delete(spec.photo_key)
    saved = f"saved as {spec.name}" + (" (replacing the face saved under that name)" if replaced else "")
    steps = f"{spec.steps} step" + ("" if spec.steps == 1 else "s")
    return _png(service.photo_beside_projection(photo, projection)), f"{saved} · {entry.name} · {steps}"


RENDERERS = {"waifu": (WaifuSpec, render_waifu), "blend": (BlendSpec, render_blend),
             "encode": (EncodeSpec, render_encode)}


def run_job(kind: str, job_id: str, spec_dict: dict, scope: str | None, redis) -> dict:
    """The body every task shares; testable without a broker."""
    record = store.get_job(redis, job_id)
    if record and record.get("state") in ("done", "failed"):
        return {"job_id": job_id, "state": record["state"], "redelivered": True}   # already answered
    if store.count_delivery(redis, job_id) > MAX_DELIVERIES:
        log.error("job %s killed its worker %d times; failing it", job_id, MAX_DELIVERIES)
        store.finish_job(redis, job_id, "failed", f"the worker crashed {MAX_DELIVERIES} times on this job "
                                                  f"(job {job_id}); try a smaller request or tell the server owner")
        return {"job_id": job_id, "state": "failed"}
    store.mark_running(redis, job_id)
    spec_type, render = RENDERERS[kind]
    try:
        png, summary = render(spec_type.from_dict(spec_dict), scope, redis)
    except InputError as e:
        store.finish_job(redis, job_id, "failed", str(e))
        return {"job_id": job_id, "state": "failed"}
    except SoftTimeLimitExceeded:
        log.error("job %s hit its time limit", job_id)
        store.finish_job(redis, job_id, "failed", f"the job took too long and was stopped (job {job_id})")
        return {"job_id": job_id, "state": "failed"}
    except Exception:
        log.exception("job %s (%s) failed", job_id, kind)
        store.finish_job(redis, job_id, "failed", internal_error_message(job_id))
        return {"job_id": job_id, "state": "failed"}
    store.finish_job(redis, job_id, "done", summary, png=png)
    return {"job_id": job_id, "state": "done", "artifact": store.artifact_key(job_id), "bytes": len(png)}


@app.task(name=TASK_NAMES["waifu"])
def generate(job_id: str, spec: dict, scope: str | None = None) -> dict:
    return run_job("waifu", job_id, spec, scope, redis_client())


@app.task(name=TASK_NAMES["blend"])
def blend(job_id: str, spec: dict, scope: str | None = None) -> dict:
    return run_job("blend", job_id, spec, scope, redis_client())


@app.task(name=TASK_NAMES["encode"])
def encode(job_id: str, spec: dict, scope: str | None = None) -> dict:
    return run_job("encode", job_id, spec, scope, redis_client())
