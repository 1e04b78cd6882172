"""Discord API object payloads, shaped as discord.py 2.7.1 reads them.

Every field here is one discord.py indexes without a default (a missing one raises KeyError inside the
client and kills `client.start()`), or one a test asserts on. Keep it that way: no decorative fields.
"""
from __future__ import annotations

import datetime
import itertools
import time

# Discord's epoch (2015-01-01) in ms; snowflakes carry their creation time, which discord.py reads back.
DISCORD_EPOCH_MS = 1420070400000
_increment = itertools.count()


def snowflake(at: float | None = None) -> str:
    ms = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
    return str((ms << 22) | (next(_increment) & 0xFFF))


def iso_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def user(user_id: str, username: str, *, bot: bool = False) -> dict:
    return {
        "id": user_id, "username": username, "discriminator": "0", "global_name": username,
        "avatar": None, "bot": bot, "public_flags": 0, "flags": 0,
    }


def member(user_payload: dict, *, permissions: str = "2147483647") -> dict:
    # `flags` is required by discord.py's Member (KeyError otherwise); `permissions` only arrives in interactions.
    return {
        "user": user_payload, "roles": [], "joined_at": iso_now(), "deaf": False, "mute": False,
        "flags": 0, "pending": False, "nick": None, "avatar": None, "permissions": permissions,
    }


def text_channel(channel_id: str, guild_id: str, name: str, position: int = 0) -> dict:
    return {
        "id": channel_id, "type": 0, "guild_id": guild_id, "name": name, "position": position,
        "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
        "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
    }


def everyone_role(guild_id: str) -> dict:
    return {
        "id": guild_id, "name": "@everyone", "color": 0, "colors": {"primary_color": 0}, "hoist": False,
        "position": 0, "permissions": "2147483647", "managed": False, "mentionable": False, "flags": 0,
    }


def guild(guild_id: str, name: str, owner_id: str, channels: list[dict], members: list[dict],
          premium_tier: int = 0) -> dict:
    return {
        "id": guild_id, "name": name, "icon": None, "owner_id": owner_id, "unavailable": False,
        "premium_tier": premium_tier, "features": [], "roles": [everyone_role(guild_id)], "emojis": [],
        "stickers": [], "channels": channels, "threads": [], "members": members, "member_count": len(members),
        "voice_states": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
        "soundboard_sounds": [], "large": False, "preferred_locale": "en-US", "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
        "system_channel_id": None, "afk_channel_id": None, "afk_timeout": 300, "joined_at": iso_now(),
    }


def application(app_id: str, owner: dict) -> dict:
    return {
        "id": app_id, "name": "dnebot", "description": "", "icon": None, "bot_public": True,
        "bot_require_code_grant": False, "owner": owner, "verify_key": "0" * 64, "flags": 0,
        "team": None, "interactions_endpoint_url": None,
    }


def attachment(att_id: str, filename: str, size: int, url: str, *, content_type: str | None,
               width: int | None = None, height: int | None = None, ephemeral: bool = False) -> dict:
    payload = {
        "id": att_id, "filename": filename, "size": size, "url": url, "proxy_url": url,
        "content_type": content_type, "ephemeral": ephemeral,
    }
    if width is not None and height is not None:
        payload.update(width=width, height=height)
    return payload


def message(message_id: str, channel_id: str, author: dict, *, content: str = "", embeds: list | None = None,
            attachments: list | None = None, flags: int = 0, guild_id: str | None = None,
            webhook_id: str | None = None, application_id: str | None = None, message_type: int = 0,
            mentions: list | None = None) -> dict:
    payload = {
        "id": message_id, "channel_id": channel_id, "type": message_type, "content": content, "author": author,
        "embeds": embeds or [], "attachments": attachments or [], "mentions": mentions or [],
        "mention_roles": [], "mention_everyone": False, "pinned": False, "tts": False, "flags": flags,
        "timestamp": iso_now(), "edited_timestamp": None, "components": [],
    }
    if guild_id:
        payload["guild_id"] = guild_id
    if webhook_id:
        payload["webhook_id"] = webhook_id
    if application_id:
        payload["application_id"] = application_id
    return payload
