"""The fake Discord against the real, unmodified discord.py 2.7.1 client (in this test's own process).

Each test checks one behaviour the bot and the watcher rely on: login + gateway + command sync, the
interaction deferral and first followup, uploads and their limit, 429s waited out, unknown webhooks.
"""
import asyncio
import io
import re

import discord
import pytest
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route
from PIL import Image

from tests.fake_discord import FakeDiscordClient, FakeDiscordProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeDiscordProcess(log_path=tmp_path_factory.mktemp("fake") / "fake_discord.log") as client:
        yield client


@pytest.fixture(autouse=True)
def clean(fake):
    fake.reset()
    fake.configure(upload_limit=10 * 1024 * 1024, token_ttl=900, ack_deadline=3)
    yield
    assert fake.unhandled() == []


@pytest.fixture
def redirected(fake):
    """The two assignments a bot behind a proxy makes (see docs §E)."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = discord.gateway.yarl.URL(fake.gateway_url)
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


def png(width=8, height=8, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


class EchoBot(discord.Client):
    """A tiny bot: /echo defers, then follows up with text and a PNG; /peek downloads an attachment."""

    def __init__(self):
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)
        self.seen_attachment: bytes | None = None
        self.ready_event = asyncio.Event()

        @self.tree.command(description="echo back")
        async def echo(interaction: discord.Interaction, text: str, times: int = 1):
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(text * times, file=discord.File(io.BytesIO(png()), "echo.png"))

        @self.tree.command(description="read a photo")
        async def peek(interaction: discord.Interaction, photo: discord.Attachment):
            await interaction.response.defer(thinking=True, ephemeral=True)
            self.seen_attachment = await photo.read()
            await interaction.followup.send(f"{photo.content_type} {photo.width}x{photo.height} {photo.size}")

    async def setup_hook(self):
        await self.tree.sync()

    async def on_ready(self):
        self.ready_event.set()


async def run_bot(fake: FakeDiscordClient, scenario):
    bot = EchoBot()
    task = asyncio.create_task(bot.start("fake-token"))
    try:
        await asyncio.wait_for(bot.ready_event.wait(), 20)
        return await scenario(bot)
    finally:
        await bot.close()
        await asyncio.wait_for(task, 10)


def test_login_gateway_and_command_sync(fake, redirected):
    async def scenario(bot):
        assert bot.user.name == "dnebot"
        guild = bot.get_guild(int(fake.state()["guild_id"]))
        assert guild is not None and guild.text_channels
    asyncio.run(run_bot(fake, scenario))
    assert {c["name"] for c in fake.commands()["global"]} == {"echo", "peek"}
    assert any(entry["op"] == "identify" for entry in fake.state()["gateway_log"])


def test_defer_then_first_followup_edits_the_thinking_message(fake, redirected):
    async def scenario(bot):
        sent = await asyncio.to_thread(fake.send_command, "echo", {"text": "hi", "times": 2})
        return await asyncio.to_thread(fake.wait_result, sent["id"], 20)
    record = asyncio.run(run_bot(fake, scenario))
    assert record["callbacks"][0]["type"] == 5 and record["ack_latency_s"] < 3
    [message] = record["messages"]             # edited in place, not a second message
    assert message["content"] == "hihi" and message["id"] == record["original_message_id"]
    assert FakeDiscordClient.attachment_bytes(message["attachments"][0]) == png()
    assert not record["ephemeral"]


def test_attachment_option_is_downloadable_from_the_fake_cdn(fake, redirected):
    photo = png(30, 20)
    async def scenario(bot):
        option = FakeDiscordClient.attachment_option(photo, "me.png", "image/png")
        sent = await asyncio.to_thread(fake.send_command, "peek", {"photo": option})
        return bot, await asyncio.to_thread(fake.wait_result, sent["id"], 20)
    bot, record = asyncio.run(run_bot(fake, scenario))
    assert bot.seen_attachment == photo
    assert record["ephemeral"] and record["messages"][0]["ephemeral"]
    assert record["messages"][0]["content"] == f"image/png 30x20 {len(photo)}"


def test_late_acknowledgement_gets_unknown_interaction(fake, redirected):
    fake.configure(ack_deadline=0)
    async def scenario(bot):
        sent = await asyncio.to_thread(fake.send_command, "echo", {"text": "x"})
        await asyncio.sleep(1)
        return sent
    sent = asyncio.run(run_bot(fake, scenario))
    callbacks = [r for r in fake.requests() if r["path"].endswith("/callback")]
    assert callbacks and callbacks[0]["status"] == 404
    assert fake.interaction(sent["id"])["callbacks"] == []


def test_channel_upload_limit_rate_limit_and_unknown_webhook(fake, redirected):
    fake.configure(upload_limit=1000)
    async def scenario(bot):
        channel = bot.get_channel(int(fake.state()["channel_id"]))
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(b"x" * 1001), "big.bin"))
        assert too_big.value.status == 413 and too_big.value.code == 40005
        await asyncio.to_thread(fake.add_fault, r"^/channels/\d+/messages$", method="POST", retry_after=0.3)
        message = await channel.send("after a 429", file=discord.File(io.BytesIO(b"y" * 1000), "ok.bin"))
        fetched = await bot.fetch_channel(channel.id)
        assert fetched.name == channel.name
        return message
    message = asyncio.run(run_bot(fake, scenario))
    posts = [r for r in fake.requests() if r["method"] == "POST" and r["path"].endswith("/messages")]
    assert [p["status"] for p in posts] == [413, 429, 200]
    [stored] = fake.messages()
    assert stored["id"] == str(message.id) and FakeDiscordClient.attachment_bytes(stored["attachments"][0]) == b"y" * 1000


def test_webhook_posts_multipart_and_unknown_webhook_is_404(fake, redirected):
    hook = fake.create_webhook(name="trainer")
    assert re.match(r"https://discord.com/api/webhooks/\d{17,20}/[\w-]{60,}$", hook["discord_url"])
    async def scenario(bot):
        webhook = discord.Webhook.from_url(hook["discord_url"], client=bot)
        await asyncio.to_thread(fake.add_fault, r"^/webhooks/", method="POST", retry_after=0.2)
        sent = await webhook.send("grid", file=discord.File(io.BytesIO(png()), "grid.png"), wait=True)
        unknown = discord.Webhook.from_url(hook["discord_url"].replace(hook["id"], "1" * 18), client=bot)
        with pytest.raises(discord.NotFound):
            await unknown.send("nobody home")
        return sent
    sent = asyncio.run(run_bot(fake, scenario))
    [stored] = fake.messages()
    assert stored["via"] == "webhook" and stored["author"]["username"] == "trainer" and stored["id"] == str(sent.id)
    assert FakeDiscordClient.attachment_bytes(stored["attachments"][0]) == png()


def test_plain_http_clients_can_post_to_the_webhook_url(fake):
    import urllib.request
    hook = fake.create_webhook()
    body = (b'--B\r\nContent-Disposition: form-data; name="payload_json"\r\nContent-Type: application/json\r\n\r\n'
            b'{"content": "kimg 12"}\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="g.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n--B--\r\n")
    request = urllib.request.Request(hook["url"] + "?wait=true", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=B"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"] == "application/json"
    [stored] = fake.messages()
    assert stored["content"] == "kimg 12" and stored["attachments"][0]["filename"] == "g.png"


def test_unhandled_routes_are_recorded(fake):
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(fake.api_base + "/voice/regions")
    assert err.value.code == 404
    assert fake.unhandled() == [{"method": "GET", "path": "/voice/regions"}]
    fake.reset()


def test_followups_after_the_token_expires_are_refused(fake, redirected):
    fake.configure(token_ttl=0.5)
    async def scenario(bot):
        sent = await asyncio.to_thread(fake.send_command, "echo", {"text": "x"})
        await asyncio.to_thread(fake.wait_interaction, sent["id"], lambda r: r["callbacks"], 10)
        await asyncio.sleep(0.6)
        webhook = discord.Webhook.partial(bot.application_id, sent["token"], client=bot)
        with pytest.raises(discord.HTTPException) as expired:
            await webhook.send("too late")
        return expired.value
    error = asyncio.run(run_bot(fake, scenario))
    assert error.status == 401 and error.code == 50027


def test_gateway_reconnect_resumes_and_commands_still_arrive(fake, redirected):
    async def scenario(bot):
        assert await asyncio.to_thread(fake.ask_reconnect) == 1
        await asyncio.to_thread(fake.wait_for, lambda: any(e["op"] == "resume" for e in fake.state()["gateway_log"]),
                                10, 0.1, "a RESUME")
        await asyncio.to_thread(fake.wait_for, lambda: fake.state()["ready_sessions"] == 1, 10, 0.1, "the session")
        sent = await asyncio.to_thread(fake.send_command, "echo", {"text": "again"})
        return await asyncio.to_thread(fake.wait_result, sent["id"], 20)
    record = asyncio.run(run_bot(fake, scenario))
    assert record["messages"][0]["content"] == "again"
