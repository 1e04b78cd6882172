"""Posting one message with one image to a Discord channel (bot token) or a webhook, over plain HTTP.

Plain urllib on purpose: the watcher runs beside training code on any box, often inside the training process
itself, where an asyncio client would be a second event loop to babysit. The API base comes from
DISCORD_API_BASE, like the bot's, so tests and proxies redirect it the same way.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"
USER_AGENT = "DiscordBot (https://github.com/dnebot/dnebot, 0.1) dnebot-watch"
# discord.py's guild.py: boost tiers 0 and 1 allow 10 MiB, tier 2 50 MiB, tier 3 100 MiB.
GUILD_TIER_LIMITS = {0: 10 * 2**20, 1: 10 * 2**20, 2: 50 * 2**20, 3: 100 * 2**20}
DEFAULT_UPLOAD_LIMIT = 10 * 2**20
WEBHOOK_PATH = re.compile(r"/webhooks/(\d+)/([A-Za-z0-9_.\-]+)/?$")
MAX_RATE_LIMIT_RETRIES = 20
TIMEOUT_S = 120


class DestinationRefused(Exception):
    """Discord will never accept posts here as configured (bad webhook, token, channel or permission)."""


class UploadTooLarge(Exception):
    """413: the limit we assumed is higher than Discord's."""


class PostFailed(Exception):
    """A failure worth retrying on the next poll: network down, Discord 5xx."""


def api_base() -> str:
    return os.environ.get("DISCORD_API_BASE", DEFAULT_API_BASE).rstrip("/")


@dataclass(frozen=True)
class Destination:
    """Where posts go: `url` takes the multipart message, `headers` authenticate it."""
    key: str                  # names the destination in the watcher's state file
    url: str
    headers: dict
    refusal_hint: str         # what the user should do when Discord refuses (401/403/404)

    @classmethod
    def channel(cls, channel_id: str, token: str) -> "Destination":
        if not str(channel_id).isdigit():
            raise ValueError(f"--channel wants the channel's numeric ID (Developer Mode → Copy ID), got {channel_id!r}")
        if not token:
            raise ValueError("posting to a channel needs the bot token: set DISCORD_TOKEN, or use --webhook URL")
        return cls(f"channel:{channel_id}", f"{api_base()}/channels/{channel_id}/messages",
                   {"Authorization": f"Bot {token}"},
                   f"check that DISCORD_TOKEN is the bot's token and that the bot can see channel {channel_id} "
                   "with Send Messages and Attach Files permissions")

    @classmethod
    def webhook(cls, url: str) -> "Destination":
        parsed = urllib.parse.urlsplit(url)
        match = WEBHOOK_PATH.search(parsed.path)
        if not match:
            raise ValueError(f"not a webhook URL: {url!r}; copy it from the channel's Integrations → Webhooks "
                             "(https://discord.com/api/webhooks/<id>/<token>)")
        webhook_id, webhook_token = match.groups()
        if "DISCORD_API_BASE" in os.environ or parsed.hostname in ("discord.com", "discordapp.com", "canary.discord.com",
                                                                   "ptb.discord.com"):
            base = api_base()
        else:
            # A proxy's (or the test fake's) own webhook URL: post to it as given.
            base = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path[: match.start()], "", ""))
        return cls(f"webhook:{webhook_id}", f"{base}/webhooks/{webhook_id}/{webhook_token}?wait=true", {},
                   f"the webhook {webhook_id} was deleted or its URL is mistyped: create a new one in the channel's "
                   "Integrations → Webhooks and pass its URL with --webhook")


def _multipart(content: str, filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    payload = {"content": content, "attachments": [{"id": 0, "filename": filename}],
               # Run names are free text: never let one ping @everyone.
               "allowed_mentions": {"parse": []}}
    parts = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n"
        f"Content-Type: application/json\r\n\r\n{json.dumps(payload)}\r\n".encode(),
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"{filename}\"\r\n"
        f"Content-Type: {content_type}\r\n\r\n".encode(),
        data,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _retry_after(error: urllib.error.HTTPError, body: bytes) -> float:
    try:
        return float(json.loads(body)["retry_after"])
    except (ValueError, KeyError, TypeError):
        return float(error.headers.get("Retry-After", "1") or 1)


def _discord_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
        return f"{payload.get('message', '')} (code {payload.get('code', '?')})"
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")


def post_image(destination: Destination, content: str, filename: str, data: bytes, sleep=time.sleep) -> dict:
    """POST one message carrying one file; waits out 429s; returns Discord's message object."""
    content_type = "image/png" if filename.endswith(".png") else "image/jpeg"
    body, multipart_type = _multipart(content, filename, data, content_type)
    headers = {**destination.headers, "Content-Type": multipart_type, "User-Agent": USER_AGENT}
    for _ in range(MAX_RATE_LIMIT_RETRIES):
        request = urllib.request.Request(destination.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                text = response.read()
                return json.loads(text) if text else {}
        except urllib.error.HTTPError as error:
            reply = error.read()
            if error.code == 429:
                wait = _retry_after(error, reply)
                log.warning("Discord rate limit on %s: waiting %.2f s", destination.key, wait)
                sleep(wait)
                continue
            if error.code in (401, 403, 404):
                raise DestinationRefused(f"Discord refused {destination.key} with HTTP {error.code} "
                                         f"{_discord_message(reply)}: {destination.refusal_hint}") from None
            if error.code == 413:
                raise UploadTooLarge(f"Discord refused {len(data)} bytes as too large (413)") from None
            raise PostFailed(f"HTTP {error.code} from Discord: {_discord_message(reply)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise PostFailed(f"cannot reach {destination.url.split('?')[0]}: {error}") from None
    raise PostFailed(f"still rate limited after {MAX_RATE_LIMIT_RETRIES} waits")


def guild_upload_limit(channel_id: str, token: str) -> int | None:
    """The channel's guild upload limit from its boost tier, or None when the bot cannot tell."""
    headers = {"Authorization": f"Bot {token}", "User-Agent": USER_AGENT}
    try:
        channel = _get_json(f"{api_base()}/channels/{channel_id}", headers)
        guild_id = channel.get("guild_id")
        if not guild_id:
            return None
        guild = _get_json(f"{api_base()}/guilds/{guild_id}", headers)
        return GUILD_TIER_LIMITS.get(int(guild.get("premium_tier", 0)), DEFAULT_UPLOAD_LIMIT)
    except (urllib.error.URLError, OSError, ValueError, TypeError) as error:
        log.info("cannot read channel %s's guild upload limit (%s); assuming %d MiB", channel_id, error,
                 DEFAULT_UPLOAD_LIMIT // 2**20)
        return None


def _get_json(url: str, headers: dict) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        payload = json.loads(response.read())
    if not isinstance(payload, dict):
        raise ValueError(f"{url} returned {type(payload).__name__}, not an object")
    return payload
