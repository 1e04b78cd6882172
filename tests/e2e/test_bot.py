"""The real bot (`dnebot bot`, its own process) against the fake Discord, with a real Celery worker.

What a user sees: the deferral within Discord's 3 s, the image that `dnebot local` draws for the same
command, refusals only they can see with the words that say what to change, results that still arrive
when the interaction token has expired or Discord hiccups right after the deferral.
"""
import io

import pytest
from PIL import Image

from tasks.blend_recipe import parse_weights
from tasks.specs import InputError
from tests.fake_discord import FakeDiscordClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

EPHEMERAL, LOADING = 64, 128
RECIPE = "human:60 fox:20 anime:10 pony:10"


def the_message(record: dict) -> dict:
    [message] = record["messages"]
    return message


def image_of(message: dict) -> bytes:
    [attachment] = message["attachments"]
    return FakeDiscordClient.attachment_bytes(attachment)


def fields(message: dict) -> dict:
    [embed] = message["embeds"]
    return {f["name"]: f["value"] for f in embed["fields"]} | {"footer": embed["footer"]["text"]}


def assert_deferred_in_time(record: dict) -> None:
    first = record["callbacks"][0]
    assert first["type"] == 5, "the command must defer first"
    assert record["ack_latency_s"] < 3.0, f"deferral took {record['ack_latency_s']:.2f}s (Discord allows 3)"


def test_waifu_seed_42_is_the_png_local_mode_writes(fake, local_png):
    record = fake.wait_result(fake.send_command("waifu", {"seed": 42})["id"])
    assert_deferred_in_time(record)
    message = the_message(record)
    assert message["id"] == record["original_message_id"], "the result fills the deferred message"
    assert not message["ephemeral"] and not message["flags"] & LOADING
    assert image_of(message) == local_png("/waifu seed:42")
    described = fields(message)
    assert (described["model"], described["seed"], described["psi"]) == ("anime", "42", "0.7")
    assert described["footer"].startswith("job ")


def test_waifu_noise_mode_and_class_options(fake, local_png):
    record = fake.wait_result(fake.send_command("waifu", {"seed": 3, "noise_mode": "none"})["id"])
    assert image_of(the_message(record)) == local_png("/waifu seed:3 noise_mode:none")
    assert image_of(the_message(record)) != local_png("/waifu seed:3")
    refused = fake.wait_result(fake.send_command("waifu", {"seed": 3, "class": 1})["id"])
    assert the_message(refused)["ephemeral"]
    assert the_message(refused)["content"] == "model anime is not conditional; leave out class"


def test_blend_is_the_png_local_mode_writes(fake, local_png):
    sent = fake.send_command("blend", {"source": "seed:7", "spec": RECIPE})
    record = fake.wait_result(sent["id"])
    assert_deferred_in_time(record)
    message = the_message(record)
    assert image_of(message) == local_png(f"/blend seed:7 {RECIPE}")
    described = fields(message)
    # the recipe as normalised (sorted by name): one recipe, one spelling
    assert described["source"] == "seed:7" and described["recipe"] == "anime:10 fox:20 human:60 pony:10"


def test_blend_weights_summing_to_99_are_refused_privately(fake):
    spec = "human:60 fox:20 anime:10 pony:9"
    with pytest.raises(InputError) as expected:
        parse_weights(spec)
    record = fake.wait_result(fake.send_command("blend", {"source": "seed:7", "spec": spec})["id"])
    [callback] = record["callbacks"]
    assert callback["type"] == 4 and callback["flags"] & EPHEMERAL, "a refusal is the ephemeral first response"
    message = the_message(record)
    assert message["ephemeral"] and message["content"] == str(expected.value)
    assert message["content"] == "the weights add up to 99; make them add up to 100"


def test_refusals_name_the_fix(fake):
    unknown = fake.wait_result(fake.send_command("waifu", {"model": "dragon"})["id"])
    assert the_message(unknown)["ephemeral"]
    assert the_message(unknown)["content"] == "unknown model 'dragon'; known models: anime, fox, human, pony"
    missing_face = fake.wait_result(fake.send_command("blend", {"source": "nobody", "spec": RECIPE})["id"])
    assert_deferred_in_time(missing_face)   # a saved face is looked up in Redis, after the deferral
    [message] = [m for m in missing_face["messages"]]
    assert message["ephemeral"] and "No face is saved as 'nobody'" in message["content"]
    assert "/encode" in message["content"]
    assert not any(m["interaction_id"] == missing_face["id"] and not m["ephemeral"] for m in fake.messages(with_bytes=False)), \
        "the public thinking message is removed"


def _photo(size=(48, 40)) -> bytes:
    image = Image.new("RGB", size, (180, 140, 120))
    for x in range(size[0] // 4, 3 * size[0] // 4):
        for y in range(size[1] // 4, 3 * size[1] // 4):
            image.putpixel((x, y), (90, 60, 50))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_encode_an_attachment_then_blend_it_by_name(fake, local_png, e2e_dir):
    photo_path = e2e_dir / "me.png"
    photo_path.write_bytes(_photo())
    photo = FakeDiscordClient.attachment_option(_photo(), "me.png", "image/png")
    record = fake.wait_result(fake.send_command("encode", {"photo": photo, "name": "E2E_Face", "steps": 5})["id"],
                              timeout=300)
    assert_deferred_in_time(record)
    message = the_message(record)
    assert not message["ephemeral"] and message["attachments"], message["content"]
    assert fields(message)["name"] == "e2e_face"
    assert image_of(message) == local_png(f"/encode photo:{photo_path} name:e2e_face steps:5")
    assert any(f["path"].endswith("/me.png") for f in fake.cdn_fetches()), "the bot downloads the photo itself"

    blended = fake.wait_result(fake.send_command("blend", {"source": "e2e_face", "spec": RECIPE})["id"])
    assert fields(the_message(blended))["source"] == "e2e_face" and image_of(the_message(blended))


def test_encode_refuses_by_attachment_metadata_before_downloading(fake):
    before = len(fake.cdn_fetches())
    not_a_photo = FakeDiscordClient.attachment_option(b"%PDF-1.4", "cv.pdf", "application/pdf")
    record = fake.wait_result(fake.send_command("encode", {"photo": not_a_photo, "name": "cv"})["id"])
    assert the_message(record)["ephemeral"]
    assert the_message(record)["content"].startswith("That attachment is application/pdf, not a photo.")
    huge = FakeDiscordClient.attachment_option(_photo(), "huge.png", "image/png", width=10000, height=8000)
    record = fake.wait_result(fake.send_command("encode", {"photo": huge, "name": "huge"})["id"])
    assert "megapixels" in the_message(record)["content"] and the_message(record)["ephemeral"]
    assert len(fake.cdn_fetches()) == before


def test_encode_refuses_a_file_that_lies_about_being_an_image(fake):
    liar = FakeDiscordClient.attachment_option(b"not an image at all", "me.png", "image/png")
    record = fake.wait_result(fake.send_command("encode", {"photo": liar, "name": "liar"})["id"])
    assert_deferred_in_time(record)
    [message] = record["messages"]
    assert message["ephemeral"] and message["content"].startswith("That file is not an image I can read.")


def test_models_and_model_autocomplete(fake):
    record = fake.wait_result(fake.send_command("models")["id"])
    [embed] = the_message(record)["embeds"]
    assert the_message(record)["ephemeral"] and "anime (default)" in embed["description"]
    sent = fake.send_autocomplete("waifu", {"model": "o"}, focused="model")
    answered = fake.wait_interaction(sent["id"], lambda r: r["callbacks"])
    [callback] = answered["callbacks"]
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == ["fox", "pony"]


def test_followup_that_404s_right_after_the_deferral_is_retried(fake):
    fake.add_fault(r"^/webhooks/\d+/[^/]+$", method="POST", status=404, code=10015, message="Unknown Webhook", count=2)
    record = fake.wait_result(fake.send_command("waifu", {"seed": 5})["id"])
    message = the_message(record)
    assert message["id"] == record["original_message_id"] and image_of(message)
    statuses = [r.get("status") for r in fake.requests() if r["method"] == "POST" and r["path"].startswith("/webhooks/")]
    assert statuses[-3:] == [404, 404, 200]


def test_result_goes_to_the_channel_with_a_mention_when_the_token_has_expired(fake, local_png):
    earlier = {m["id"] for m in fake.messages(with_bytes=False)}
    fake.configure(token_ttl=0)   # the deferral still works; every followup is refused (401, 50027)
    try:
        sent = fake.send_command("waifu", {"seed": 42})
        posted = fake.wait_for(lambda: [m for m in fake.messages() if m["via"] == "channel" and m["id"] not in earlier],
                               120, what="the channel post")
    finally:
        fake.configure(token_ttl=900)
    [message] = posted
    assert image_of(message) == local_png("/waifu seed:42")
    assert message["content"].startswith(f"<@{fake.state()['owner_id']}>")
    assert message["mentions"] and message["mentions"][0]["id"] == fake.state()["owner_id"]
    assert fake.interaction(sent["id"])["callbacks"][0]["type"] == 5


@pytest.fixture
def queue(e2e_env, monkeypatch):
    """This process as another client of the bot's queue (same Redis DB and namespace)."""
    import redis

    from tasks.celery_app import use_redis

    for key in ("DNEBOT_NAMESPACE", "DNEBOT_MODELS", "DNEBOT_REDIS_URL"):
        monkeypatch.setenv(key, e2e_env[key])
    use_redis(e2e_env["DNEBOT_REDIS_URL"])
    client = redis.Redis.from_url(e2e_env["DNEBOT_REDIS_URL"])
    yield client
    client.close()


def channel_origin(fake) -> dict:
    """A job record's origin with no usable interaction token: the result must go to the channel."""
    state = fake.state()
    return {"guild_id": state["guild_id"], "channel_id": state["channel_id"], "user_id": state["owner_id"],
            "application_id": state["application_id"], "interaction_token": "", "token_time": 0}


def test_a_failed_job_posts_its_message(fake, queue):
    from tasks.specs import WaifuSpec
    from tasks.submit import submit_job

    # A model the worker's registry lacks gets past no check of the bot's, so only a job submitted by
    # another client can carry it; the worker fails it with a message, which the bot must deliver.
    job_id = submit_job(queue, "waifu", WaifuSpec(model="dragon", seed=1, psi=0.7), channel_origin(fake),
                        scope="guild:x")
    [message] = fake.wait_for(lambda: [m for m in fake.messages() if m["embeds"]
                                       and job_id in m["embeds"][0]["footer"]["text"]], 60, what="the failure post")
    assert message["content"] == (f"<@{fake.state()['owner_id']}> That didn't work: unknown model 'dragon'; "
                                  f"known models: anime, fox, human, pony")
    assert not message["attachments"]


def test_a_job_that_finishes_while_the_bot_is_down_is_posted_after_restart(fake, bot, queue):
    """Events wait in the consumer group; a restarted bot reads them and posts with the bot token."""
    from tasks import store
    from tasks.registry import load_registry
    from tasks.specs import waifu_spec
    from tasks.submit import submit_job

    client = queue
    state = fake.state()
    bot.stop()
    try:
        spec = waifu_spec(load_registry(), seed=11)
        origin = channel_origin(fake)
        after = store.last_event_id(client)
        job_id = submit_job(client, "waifu", spec, origin, scope=f"guild:{state['guild_id']}")
        assert store.wait_for_event(client, job_id, after, 120).state == "done"
    finally:
        bot.start(fake)
    posted = fake.wait_for(lambda: [m for m in fake.messages() if m["embeds"] and job_id in m["embeds"][0]["footer"]["text"]],
                           60, what="the post after restart")
    assert posted[0]["via"] == "channel" and image_of(posted[0])
    assert f"<@{state['owner_id']}>" in posted[0]["content"]
