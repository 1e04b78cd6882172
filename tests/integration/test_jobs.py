"""Jobs through the real queue: submit → Redis → `celery worker` process → artifact + event."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tasks import store
from tasks.specs import BlendSpec, EncodeSpec, WaifuSpec, blend_spec, encode_spec, waifu_spec

pytestmark = pytest.mark.integration
JOB_TIMEOUT_S = 120


def run_job(redis_db, kind, spec, scope="test:scope", job_id=None):
    from tasks.submit import submit_job

    after = store.last_event_id(redis_db)
    job_id = submit_job(redis_db, kind, spec, {"test": True}, scope=scope, job_id=job_id)
    event = store.wait_for_event(redis_db, job_id, after, JOB_TIMEOUT_S)
    assert event is not None, f"job {job_id} ({kind}) got no event within {JOB_TIMEOUT_S} s"
    return job_id, event


@pytest.fixture(scope="module")
def registry(queue_env):
    from tasks.registry import load_registry
    return load_registry()


def expected_png(rgb):
    from models.render import png_bytes
    return png_bytes(rgb)


def test_waifu(redis_db, celery_worker_process, registry):
    from models import service

    spec = waifu_spec(registry, seed=42, model="anime")
    job_id, event = run_job(redis_db, "waifu", spec)
    assert (event.state, event.message) == ("done", "anime · seed 42 · psi 0.7")
    want = expected_png(service.render_waifu(str(registry.get("anime").path), 42, 0.7, "const", None))
    assert store.get_artifact(redis_db, job_id) == want
    record = store.get_job(redis_db, job_id)
    assert record["state"] == "done" and record["artifact"] == store.artifact_key(job_id)
    assert record["deliveries"] == "1"
    assert 0 < redis_db.ttl(store.artifact_key(job_id)) <= store.ARTIFACT_TTL_S


def test_blend_from_seed(redis_db, celery_worker_process, registry):
    from models import service

    spec = blend_spec(registry, source="seed:42", recipe="human:60 fox:20 anime:10 pony:10")
    job_id, event = run_job(redis_db, "blend", spec)
    assert (event.state, event.message) == ("done", "seed:42 · anime:10 fox:20 human:60 pony:10")
    ws = service.base_ws_for_seed(str(registry.get("human").path), 42, 0.7)
    recipe = [(str(registry.get(n).path), p / 100) for n, p in spec.recipe]
    assert store.get_artifact(redis_db, job_id) == expected_png(service.render_blend(recipe, ws))


def test_encode_then_blend_the_saved_face(redis_db, celery_worker_process, registry):
    from models import service
    from tasks.photo import decode_photo
    from tasks.submit import new_job_id

    photo = np.random.RandomState(1).randint(0, 256, (40, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    job_id = new_job_id()
    photo_key = store.put_upload(redis_db, job_id, buf.getvalue())
    spec = encode_spec(registry, name="Obama", photo_key=photo_key, steps=5)
    assert spec == EncodeSpec("obama", photo_key, "human", 5)
    job_id, event = run_job(redis_db, "encode", spec, scope="test:guild1", job_id=job_id)
    assert (event.state, event.message) == ("done", "saved as obama · human · 5 steps")

    ws, projection = service.encode_photo(str(registry.get("human").path), decode_photo(buf.getvalue()), 5)
    want = expected_png(service.photo_beside_projection(decode_photo(buf.getvalue()), projection))
    assert store.get_artifact(redis_db, job_id) == want
    latent = store.load_latent(redis_db, "test:guild1", "obama")
    assert latent.model == "human" and latent.ws.dtype == np.float32
    np.testing.assert_array_equal(latent.ws, ws)
    assert redis_db.get(photo_key) is None   # the upload is not kept once used

    spec = blend_spec(registry, source="obama", recipe="human:50 fox:50")
    job_id, event = run_job(redis_db, "blend", spec, scope="test:guild1")
    assert event.state == "done"
    recipe = [(str(registry.get(n).path), p / 100) for n, p in spec.recipe]
    assert store.get_artifact(redis_db, job_id) == expected_png(service.render_blend(recipe, ws))

    # names are per scope: another guild has no 'obama'
    job_id, event = run_job(redis_db, "blend", spec, scope="test:guild2")
    assert (event.state, event.message) == (
        "failed", "no face is saved as 'obama' here; save one with /encode photo:<your photo> name:obama, "
                  "or blend seed:N")

    again = new_job_id()
    spec = encode_spec(registry, name="obama", photo_key=store.put_upload(redis_db, again, buf.getvalue()), steps=1)
    _, event = run_job(redis_db, "encode", spec, scope="test:guild1", job_id=again)
    assert (event.state, event.message) == (
        "done", "saved as obama (replacing the face saved under that name) · human · 1 step")


def test_bad_model_fails_with_its_message(redis_db, celery_worker_process):
    job_id, event = run_job(redis_db, "waifu", WaifuSpec("dog", 1, 0.7))
    assert (event.state, event.message) == ("failed", "unknown model 'dog'; known models: anime, fox, human, pony")
    assert store.get_job(redis_db, job_id)["state"] == "failed"
    assert store.get_artifact(redis_db, job_id) is None


def test_internal_error_fails_with_job_id(redis_db, celery_worker_process):
    from tasks.celery_app import app
    from tasks.submit import new_job_id

    job_id = new_job_id()
    after = store.last_event_id(redis_db)
    store.create_job(redis_db, job_id, "waifu", {}, {}, None)
    app.send_task("dnebot.generate", args=[job_id, {"no": "such field"}], task_id=job_id)
    event = store.wait_for_event(redis_db, job_id, after, JOB_TIMEOUT_S)
    assert (event.state, event.message) == ("failed", f"something went wrong on the worker (job {job_id})")


def test_redelivered_job_fails_after_max_deliveries(redis_db, queue_env):
    """A job that killed its worker is redelivered (reject_on_worker_lost); the 4th delivery gives up."""
    from tasks.jobs import run_job as run_job_body
    from tasks.submit import new_job_id

    job_id = new_job_id()
    store.create_job(redis_db, job_id, "waifu", WaifuSpec("anime", 1, 0.7).to_dict(), {}, None)
    redis_db.hset(store.job_key(job_id), "deliveries", 3)
    after = store.last_event_id(redis_db)
    assert run_job_body("waifu", job_id, WaifuSpec("anime", 1, 0.7).to_dict(), None, redis_db)["state"] == "failed"
    event = store.wait_for_event(redis_db, job_id, after, 5)
    assert event.message.startswith("the worker crashed 3 times on this job")
    # and a late redelivery of a finished job does nothing
    assert run_job_body("waifu", job_id, {}, None, redis_db)["redelivered"] is True


def test_blend_spec_round_trip_through_the_queue_is_json(queue_env):
    from tasks.celery_app import app
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert BlendSpec.from_dict(BlendSpec(1, None, (("human", 100),), 0.7).to_dict()).recipe == (("human", 100),)
