"""The bot's parts that need no Discord: settings, the redirect, result formatting, the event consumer."""
import asyncio
import io
import os
import subprocess
import sys
import uuid

import discord
import pytest
from PIL import Image

from bot.config import BotConfig, ConfigError, apply_discord_endpoints
from bot.posting import describe_job, fit_to_limit
from bot.watch_fit import REQUEST_OVERHEAD_BYTES



def test_missing_token_says_how_to_get_one():
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "tasks.cli", "bot"], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr and "DISCORD_TOKEN=... dnebot bot" in done.stderr


def test_settings_from_env():
    config = BotConfig.from_env({"DISCORD_TOKEN": " t ", "DNEBOT_GUILD_ID": "123", "DNEBOT_GUILD_READY_TIMEOUT": "0.2",
                                 "DNEBOT_REDIS_URL": "redis://x:1/2"})
    assert (config.token, config.guild_id, config.guild_ready_timeout, config.redis_url) == ("t", 123, 0.2, "redis://x:1/2")
    with pytest.raises(ConfigError, match="DNEBOT_GUILD_ID must be a whole number"):
        BotConfig.from_env({"DISCORD_TOKEN": "t", "DNEBOT_GUILD_ID": "general"})


def test_discord_endpoints_are_redirected():
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        apply_discord_endpoints("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway")
        assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


def test_the_bot_imports_no_torch():
    code = "import sys, bot.app, bot.commands, bot.posting, bot.events; " \
           "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'models'))]; print(bad)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_embed_describes_the_job():
    embed = describe_job("blend", {"source_seed": None, "source_name": "obama", "recipe": [["fox", 40], ["human", 60]],
                                   "psi": 0.7}, "abc")
    values = {f.name: f.value for f in embed.fields}
    assert values == {"source": "obama", "psi": "0.7", "recipe": "fox:40 human:60"} and embed.footer.text == "job abc"


def test_images_over_the_upload_limit_are_reencoded_to_fit():
    noise = Image.frombytes("RGB", (512, 512), os.urandom(512 * 512 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    png = buffer.getvalue()
    assert fit_to_limit(png, len(png) + REQUEST_OVERHEAD_BYTES) == (png, "png")   # the request around it counts
    smaller, extension = fit_to_limit(png, 100_000)
    assert extension == "jpg" and len(smaller) <= 100_000


class FlakyPoster:
    """Fails the first post of each job (as a Discord outage would), then succeeds."""

    def __init__(self):
        self.attempts: dict[str, int] = {}
        self.posted: list[str] = []

    async def post(self, event):
        self.attempts[event.job_id] = self.attempts.get(event.job_id, 0) + 1
        if self.attempts[event.job_id] == 1:
            return False
        self.posted.append(event.job_id)
        return True


def test_consumer_acks_only_after_posting_and_rereads_what_it_could_not_post(monkeypatch, redis_url):
    import redis.asyncio as aioredis

    from bot import events as events_module
    from bot.events import JobEventConsumer
    from tasks import store

    monkeypatch.setenv("DNEBOT_NAMESPACE", f"dnebot-test-bot-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(events_module, "RETRY_BACKOFF_S", (0.05,))
    monkeypatch.setattr(events_module, "BLOCK_MS", 100)

    async def scenario():
        redis = aioredis.Redis.from_url(redis_url)
        try:
            await store.ensure_event_group(redis, "bot")
            for job_id in ("a", "b"):
                await redis.xadd(store.events_stream(), {"job_id": job_id, "state": "done", "message": ""})
            poster = FlakyPoster()
            task = asyncio.create_task(JobEventConsumer(redis, poster, "bot", "c1").run())
            for _ in range(100):
                if len(poster.posted) == 2:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            pending = await redis.xpending(store.events_stream(), "bot")
            return poster, pending
        finally:
            keys = [k async for k in redis.scan_iter(match=f"{store.namespace()}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()

    poster, pending = asyncio.run(scenario())
    assert sorted(poster.posted) == ["a", "b"] and poster.attempts == {"a": 2, "b": 2}
    assert pending["pending"] == 0


def test_commands_sync_to_the_guild_in_dnebot_guild_id(header_zoo, monkeypatch, tmp_path, redis_url):
    """FaceBot in this process against the fake Discord: setup_hook syncs to one guild when asked."""
    from bot.app import FaceBot
    from tests.fake_discord import FakeDiscordProcess

    monkeypatch.setenv("DNEBOT_NAMESPACE", f"dnebot-test-bot-{uuid.uuid4().hex[:8]}")
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    with FakeDiscordProcess(log_path=tmp_path / "fake.log") as fake:
        guild_id = int(fake.state()["guild_id"])
        apply_discord_endpoints(fake.api_base, fake.gateway_url)
        config = BotConfig(token="t", redis_url=redis_url, guild_id=guild_id, guild_ready_timeout=0.1)

        async def scenario():
            bot = FaceBot(config)
            task = asyncio.create_task(bot.start(config.token))
            try:
                await asyncio.to_thread(fake.wait_bot_ready, 20, ("waifu", "blend", "encode", "models"))
            finally:
                await bot.close()
                await asyncio.gather(task, return_exceptions=True)

        try:
            asyncio.run(scenario())
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
        synced = fake.commands()
        assert synced["global"] == []
        assert sorted(c["name"] for c in synced["guilds"][str(guild_id)]) == ["blend", "encode", "models", "waifu"]
        [waifu] = [c for c in synced["guilds"][str(guild_id)] if c["name"] == "waifu"]
        model = [o for o in waifu["options"] if o["name"] == "model"][0]
        assert model["autocomplete"] is True
        assert fake.unhandled() == []
