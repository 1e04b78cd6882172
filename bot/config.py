"""The bot's settings, all from the environment (the same names in deploy/.env.example and the tests).

DISCORD_TOKEN            the bot token (required)
DISCORD_API_BASE         REST base URL, e.g. a rate-limit proxy's; default Discord's https://discord.com/api/v10
DISCORD_GATEWAY_URL      gateway URL, e.g. a proxy's; default wss://gateway.discord.gg/
DNEBOT_REDIS_URL         Redis for jobs and events (tasks.celery_app.redis_url)
DNEBOT_GUILD_ID          sync commands to this guild only (instant; global sync can take an hour to show)
DNEBOT_GUILD_READY_TIMEOUT  seconds discord.py waits after the last GUILD_CREATE before on_ready (default 2)
DNEBOT_TOKEN_MAX_AGE     seconds an interaction token is trusted for followups (default 840 = 14 min of Discord's 15)
DNEBOT_EVENTS_GROUP      consumer group on the job events stream (default "bot"; replicas share it)
DNEBOT_CONSUMER          this bot's consumer name in the group (default the host name)
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import discord
import yarl

# Followups use the interaction token, valid 15 min after the interaction; keep a minute of slack for
# clock skew and the upload itself, then post with the bot token instead.
TOKEN_MAX_AGE_S = 14 * 60


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to set it."""


@dataclass(frozen=True)
class BotConfig:
    token: str
    redis_url: str
    api_base: str | None = None
    gateway_url: str | None = None
    guild_id: int | None = None
    guild_ready_timeout: float = 2.0
    token_max_age: float = TOKEN_MAX_AGE_S
    events_group: str = "bot"
    consumer: str = "bot"

    @classmethod
    def from_env(cls, env=os.environ) -> "BotConfig":
        from tasks.celery_app import redis_url

        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise ConfigError("DISCORD_TOKEN is not set. Create a bot at https://discord.com/developers/applications, "
                              "copy its token (Bot → Reset Token) and run: DISCORD_TOKEN=... dnebot bot")
        return cls(
            token=token,
            redis_url=env.get("DNEBOT_REDIS_URL") or redis_url(),
            api_base=env.get("DISCORD_API_BASE") or None,
            gateway_url=env.get("DISCORD_GATEWAY_URL") or None,
            guild_id=_number(env, "DNEBOT_GUILD_ID", int),
            guild_ready_timeout=_number(env, "DNEBOT_GUILD_READY_TIMEOUT", float, 2.0),
            token_max_age=_number(env, "DNEBOT_TOKEN_MAX_AGE", float, TOKEN_MAX_AGE_S),
            events_group=env.get("DNEBOT_EVENTS_GROUP") or "bot",
            consumer=env.get("DNEBOT_CONSUMER") or socket.gethostname(),
        )


def _number(env, name: str, kind, default=None):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {'whole ' if kind is int else ''}number, got {raw!r}") from None


def apply_discord_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Send REST and gateway traffic elsewhere, as bots behind a rate-limit proxy do (and our tests).

    discord.py has no base-URL argument: every REST call, interaction callback and webhook builds its URL
    from Route.BASE, and a non-sharded client dials DiscordWebSocket.DEFAULT_GATEWAY (docs §E).
    """
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
