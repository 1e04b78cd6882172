"""`dnebot bot`: the Discord front end. Parses, validates, defers, enqueues; one consumer posts results.

Never imports torch or models/: everything it checks is torch-free (tasks.specs, tasks.registry,
tasks.blend_recipe, tasks.photo), and everything heavy happens on the workers.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys

import discord
import redis.asyncio as aioredis
from discord import app_commands

from bot import commands
from bot.config import BotConfig, ConfigError, apply_discord_endpoints
from bot.events import JobEventConsumer
from bot.posting import ResultPoster
from tasks import store
from tasks.registry import RegistryError, current_registry

log = logging.getLogger("dnebot.bot")

REGISTRY_REFRESH_S = 30   # models.toml edits show up in /models and autocomplete without a restart
INTERNAL_ERROR = "Something went wrong on my side and nothing was queued. Try again; if it repeats, tell the server owner."


class FaceBot(discord.Client):
    def __init__(self, config: BotConfig) -> None:
        # Slash commands need no privileged intents; guilds gives the channel cache used for posting.
        super().__init__(intents=discord.Intents(guilds=True), guild_ready_timeout=config.guild_ready_timeout)
        self.config = config
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = self.on_command_error
        self.redis: aioredis.Redis | None = None
        self.registry = None
        self._background: list[asyncio.Task] = []

    async def setup_hook(self) -> None:
        self.registry = await asyncio.to_thread(current_registry)
        self.redis = aioredis.Redis.from_url(self.config.redis_url)
        try:
            # The group exists before any command is accepted, so no job's event can precede it.
            await store.ensure_event_group(self.redis, self.config.events_group)
        except (OSError, aioredis.RedisError) as e:
            raise ConfigError(f"Redis at {self.config.redis_url} is unreachable ({e}); start Redis or set "
                              f"DNEBOT_REDIS_URL") from None
        commands.register(self.tree)
        if self.config.guild_id:
            guild = discord.Object(self.config.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d commands %s", len(synced),
                 f"to guild {self.config.guild_id}" if self.config.guild_id else "globally")
        poster = ResultPoster(self, self.redis, self.config.token_max_age)
        consumer = JobEventConsumer(self.redis, poster, self.config.events_group, self.config.consumer)
        self._background = [asyncio.create_task(consumer.run(), name="job-events"),
                            asyncio.create_task(self._refresh_registry(), name="registry-refresh")]

    async def _refresh_registry(self) -> None:
        while True:
            await asyncio.sleep(REGISTRY_REFRESH_S)
            try:
                self.registry = await asyncio.to_thread(current_registry)
            except RegistryError as e:
                log.error("models.toml is broken, keeping the previous registry: %s", e)

    async def on_ready(self) -> None:
        log.info("ready as %s in %d guild(s)", self.user, len(self.guilds))

    async def on_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("command %s failed", interaction.command.name if interaction.command else "?", exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(INTERNAL_ERROR, ephemeral=True)
            else:
                await interaction.response.send_message(INTERNAL_ERROR, ephemeral=True)
        except discord.HTTPException:
            pass

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await super().close()
        if self.redis is not None:
            await self.redis.aclose()


async def serve(config: BotConfig) -> None:
    """Runs until SIGINT/SIGTERM (docker stop, a test's terminate) and then closes cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FaceBot(config) as bot:
        running = asyncio.create_task(bot.start(config.token))
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if running in done:
            running.result()   # a login or gateway failure: raise it
        await bot.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dnebot bot", description="Run the Discord bot. Settings come from the "
                                     "environment: DISCORD_TOKEN (required), DNEBOT_REDIS_URL, DNEBOT_GUILD_ID, "
                                     "DISCORD_API_BASE, DISCORD_GATEWAY_URL (see bot/config.py).")
    parser.add_argument("--guild-ready-timeout", type=float, default=None,
                        help="seconds to wait for guilds before ready (env DNEBOT_GUILD_READY_TIMEOUT, default 2)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    args = parser.parse_args(argv)
    try:
        config = BotConfig.from_env()
    except ConfigError as e:
        print(f"dnebot bot: {e}", file=sys.stderr)
        return 2
    if args.guild_ready_timeout is not None:
        config = dataclasses.replace(config, guild_ready_timeout=args.guild_ready_timeout)
    apply_discord_endpoints(config.api_base, config.gateway_url)
    discord.utils.setup_logging(level=getattr(logging, args.log_level.upper(), logging.INFO), root=True)
    try:
        asyncio.run(serve(config))
    except discord.LoginFailure:
        print("dnebot bot: Discord refused DISCORD_TOKEN; copy the token again from the developer portal "
              "(Bot → Reset Token).", file=sys.stderr)
        return 1
    except (ConfigError, RegistryError) as e:
        print(f"dnebot bot: {e}", file=sys.stderr)
        return 1
    return 0
