"""The bot's side of the store with redis.asyncio: async submit, the consumer group, re-reading after a restart."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tasks import store
from tasks.specs import WaifuSpec

pytestmark = pytest.mark.integration


def emit(redis_db, job_id, state="done", message="ok"):
    store.create_job(redis_db, job_id, "waifu", WaifuSpec("anime", 1, 0.7).to_dict(), {}, None)
    store.finish_job(redis_db, job_id, state, message, png=b"png" if state == "done" else None)


def test_consumer_group_reads_acks_and_rereads_pending(redis_db, queue_env):
    import redis.asyncio as aioredis

    async def scenario():
        client = aioredis.Redis.from_url(queue_env["DNEBOT_REDIS_URL"])
        try:
            reader = store.EventReader(client, "bot", "bot-1")
            assert await reader.read(block_ms=10) == []          # creates the group at '$': old events skipped
            emit(redis_db, "job-a")
            emit(redis_db, "job-b", "failed", "unknown model 'dog'")
            events = await reader.read(block_ms=1000)
            assert [(e.job_id, e.state, e.message) for e in events] == [
                ("job-a", "done", "ok"), ("job-b", "failed", "unknown model 'dog'")]
            await reader.ack(events[0])

            # the bot restarts before acking job-b: a fresh reader gets it again first
            restarted = store.EventReader(client, "bot", "bot-1")
            again = await restarted.read(block_ms=10)
            assert [e.job_id for e in again] == ["job-b"]
            await restarted.ack(again[0])
            assert await restarted.read(block_ms=10) == []
            assert await client.get(store.artifact_key("job-a")) == b"png"
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_submit_async_and_saved_latent_check(redis_db, queue_env, monkeypatch):
    import redis.asyncio as aioredis

    from tasks import submit

    sent = []
    monkeypatch.setattr(submit, "_send", lambda *a: sent.append(a))
    store.save_latent(redis_db, "guild:1", "obama", np.ones((6, 16), np.float32), "human")

    async def scenario():
        client = aioredis.Redis.from_url(queue_env["DNEBOT_REDIS_URL"])
        try:
            job_id = await submit.submit_job_async(client, "waifu", WaifuSpec("anime", 7, 0.7), {"guild": "1"},
                                                   scope="guild:1")
            assert await store.saved_latent_model(client, "guild:1", "obama") == "human"
            assert await store.saved_latent_model(client, "guild:1", "nobody") is None
            assert await store.put_upload_async(client, job_id, b"photo") == store.upload_key(job_id)
            assert (await store.get_job_async(client, job_id))["spec"] == '{"model": "anime", "seed": 7, ' \
                '"psi": 0.7, "noise_mode": "const", "class_index": null}'
            assert await store.get_artifact_async(client, job_id) is None
            return job_id
        finally:
            await client.aclose()

    job_id = asyncio.run(scenario())
    assert sent == [("waifu", job_id, WaifuSpec("anime", 7, 0.7).to_dict(), "guild:1")]
    record = store.get_job(redis_db, job_id)
    assert (record["kind"], record["state"], record["scope"]) == ("waifu", "queued", "guild:1")
    with pytest.raises(TypeError):
        submit.submit_job(redis_db, "blend", WaifuSpec("anime", 7, 0.7), {})


def test_latent_round_trip_without_pickle(redis_db, queue_env):
    ws = np.random.RandomState(0).randn(6, 16).astype(np.float32)
    store.save_latent(redis_db, "local:me", "face", ws, "human")
    latent = store.load_latent(redis_db, "local:me", "face")
    np.testing.assert_array_equal(latent.ws, ws)
    assert latent.model == "human" and store.latent_names(redis_db, "local:me") == ["face"]
    assert store.load_latent(redis_db, "local:me", "other") is None
    raw = redis_db.hget(store.latents_key("local:me"), "face")
    assert raw.startswith(b"\x93NUMPY")
