"""Posting a finished (or failed) job back where it was asked for.

While the interaction token is young (< token_max_age, 14 of Discord's 15 minutes) the result is the
followup, which fills the deferred "thinking…" message. A followup that 404s right after a deferral is
retried with a short backoff (discord-api-docs #7220). With an old or refused token the result goes to
the channel with the bot token and mentions the user, so a long queue never loses a result.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from dataclasses import dataclass

import discord
from PIL import Image

from bot.watch_fit import fit_upload

from tasks import store
from tasks.store import JobEvent

log = logging.getLogger(__name__)

FOLLOWUP_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024   # discord.py's DEFAULT_FILE_SIZE_LIMIT_BYTES
TITLES = {"waifu": "This face does not exist", "blend": "A blended face", "encode": "Face saved"}
ARTIFACT_GONE = "The image expired before it could be posted (job {job_id}). Run the command again."
TOO_BIG = "The image does not fit this channel's upload limit even downscaled (job {job_id})."


@dataclass(frozen=True)
class JobResult:
    """One message's worth: text, embed, and the image (if any)."""
    content: str
    embed: discord.Embed
    image: bytes | None
    filename: str

    def file(self) -> discord.File | None:
        # A fresh File per attempt: a retried upload must start from the first byte.
        return discord.File(io.BytesIO(self.image), self.filename) if self.image is not None else None


def describe_job(kind: str, spec: dict, job_id: str) -> discord.Embed:
    embed = discord.Embed(title=TITLES.get(kind, "Job"))
    if kind == "waifu":
        embed.add_field(name="model", value=spec["model"]).add_field(name="seed", value=str(spec["seed"]))
        embed.add_field(name="psi", value=f"{spec['psi']:g}")
    elif kind == "blend":
        source = f"seed:{spec['source_seed']}" if spec.get("source_seed") is not None else spec.get("source_name")
        embed.add_field(name="source", value=source).add_field(name="psi", value=f"{spec['psi']:g}")
        embed.add_field(name="recipe", value=" ".join(f"{m}:{p}" for m, p in spec["recipe"]), inline=False)
    elif kind == "encode":
        embed.add_field(name="name", value=spec["name"]).add_field(name="model", value=spec["model"])
        embed.add_field(name="steps", value=str(spec["steps"]))
        embed.description = f"Left: your photo. Right: the face as the model draws it. Blend it with /blend {spec['name']} ..."
    embed.set_footer(text=f"job {job_id}")
    return embed


def fit_to_limit(png: bytes, limit: int) -> tuple[bytes, str] | None:
    """The result image under the upload limit, by the same ladder as training grids (bot.watch_fit: PNG as is,
    then JPEG, then downscaled); None if even the smallest does not fit. CPU work: call it in a thread."""
    try:
        fitted = fit_upload(png, Image.open(io.BytesIO(png)), "result.png", limit)
    except ValueError:
        return None
    return fitted.data, "png" if fitted.filename.endswith(".png") else "jpg"


class ResultPoster:
    def __init__(self, client: discord.Client, redis, token_max_age: float,
                 retry_delays: tuple[float, ...] = FOLLOWUP_RETRY_DELAYS_S) -> None:
        self.client = client
        self.redis = redis
        self.token_max_age = token_max_age
        self.retry_delays = retry_delays

    async def post(self, event: JobEvent) -> bool:
        """True when the job's outcome reached Discord or can never reach it (then logged); False to retry later.
        Redis errors propagate: the caller keeps the event and tries again."""
        raw = await self.redis.hgetall(store.job_key(event.job_id))
        if not raw:
            log.warning("job %s has no record (expired?); nothing to post", event.job_id)
            return True
        record = {k.decode(): v.decode() for k, v in raw.items()}
        origin = json.loads(record.get("origin") or "{}")
        if not origin.get("channel_id"):
            return True   # not a Discord job (another client on the same stream)
        result = await self._result(event, record, origin)
        if await self._followup(origin, result):
            return True
        return await self._to_channel(origin, result, event.job_id)

    async def _result(self, event: JobEvent, record: dict, origin: dict) -> JobResult:
        kind, spec, job_id = record.get("kind", ""), json.loads(record.get("spec") or "{}"), event.job_id
        embed = describe_job(kind, spec, job_id)
        if event.state != "done":
            embed.colour = discord.Colour.red()
            return JobResult(f"That didn't work: {event.message}", embed, None, "")
        png = await self.redis.get(store.artifact_key(job_id))
        if png is None:
            return JobResult(ARTIFACT_GONE.format(job_id=job_id), embed, None, "")
        limit = int(origin.get("filesize_limit") or DEFAULT_UPLOAD_LIMIT)
        fitted = await asyncio.to_thread(fit_to_limit, png, limit)
        if fitted is None:
            return JobResult(TOO_BIG.format(job_id=job_id), embed, None, "")
        image, extension = fitted
        filename = f"{kind}-{job_id}.{extension}"
        embed.set_image(url=f"attachment://{filename}")
        return JobResult("", embed, image, filename)

    async def _followup(self, origin: dict, result: JobResult) -> bool:
        token, age = origin.get("interaction_token"), time.time() - float(origin.get("token_time") or 0)
        if not token or age >= self.token_max_age:
            return False
        webhook = discord.Webhook.partial(int(origin["application_id"]), token, client=self.client)
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            await asyncio.sleep(delay)
            try:
                kwargs = {"embed": result.embed, "wait": True}
                if result.image is not None:
                    kwargs["file"] = result.file()
                await webhook.send(result.content or discord.utils.MISSING, **kwargs)
                return True
            except discord.NotFound:
                # Right after a deferral Discord can briefly not know the interaction yet: retry.
                log.info("followup 404 (attempt %d), retrying", attempt + 1)
            except discord.HTTPException as e:
                log.warning("followup refused (%s %s): posting to the channel instead", e.status, e.code)
                return False
        return False

    async def _to_channel(self, origin: dict, result: JobResult, job_id: str) -> bool:
        channel_id, user_id = int(origin["channel_id"]), origin.get("user_id")
        mention = f"<@{user_id}> " if user_id else ""
        try:
            channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
            kwargs = {"embed": result.embed, "allowed_mentions": discord.AllowedMentions(users=True)}
            if result.image is not None:
                kwargs["file"] = result.file()
            await channel.send((mention + result.content).strip(), **kwargs)
            return True
        except (discord.Forbidden, discord.NotFound) as e:
            log.error("job %s: cannot post to channel %s (%s); the result is dropped", job_id, channel_id, e)
            return True
        except discord.HTTPException as e:
            log.warning("job %s: posting to channel %s failed (%s); will retry", job_id, channel_id, e)
            return False
