"""/waifu, /blend, /encode, /models: thin translations between Discord and the job layer.

Refusals and the deferral. Discord fixes whether a response is ephemeral when the first response is sent,
and a deferral must come within 3 s. So each command works in two steps:

1. Pure checks first: the shared validators (tasks.specs builders, tasks.blend_recipe through them, the
   registry, tasks.photo.check_attachment on Discord's attachment metadata). They do no I/O and take
   microseconds, so they never endanger the 3 s. A refusal here IS the first response, sent ephemeral:
   only the user sees what to change.
2. Then `defer(thinking=True)`, public, because the result is for the channel. Checks that need I/O (is a
   saved face there, in Redis; the downloaded photo's bytes) run after it. A refusal there deletes the
   public "thinking…" message and follows up ephemeral, so a refusal is always private.

Enqueueing goes through tasks.submit.submit_job_async; the result is posted by bot.events' consumer.
"""
from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands

from tasks import store
from tasks.photo import check_attachment, validate_photo_bytes
from tasks.specs import (MAX_SEED, PSI_MAX, PSI_MIN, InputError, blend_spec, encode_spec, validate_latent_name,
                         validate_steps, waifu_spec)
from tasks.submit import new_job_id, submit_job_async

log = logging.getLogger(__name__)

QUEUE_DOWN = ("The job queue is unreachable right now, so nothing was queued. Try again in a minute; "
              "if it keeps failing, tell the server owner.")
MAX_AUTOCOMPLETE_CHOICES = 25   # Discord's cap on choices in one autocomplete answer


# ---- helpers shared by the commands ------------------------------------------------------------------

def scope_of(interaction: discord.Interaction) -> str | None:
    """Whose saved faces a blend reads and an encode writes: faces belong to a server."""
    return f"guild:{interaction.guild_id}" if interaction.guild_id else None


def origin_of(interaction: discord.Interaction) -> dict:
    """Everything the poster needs later, possibly after a restart: where to post and with which token."""
    return {
        "guild_id": str(interaction.guild_id or ""), "channel_id": str(interaction.channel_id or ""),
        "user_id": str(interaction.user.id), "application_id": str(interaction.application_id),
        "interaction_id": str(interaction.id), "interaction_token": interaction.token,
        # The token's 15 minutes count from the interaction's creation, which its snowflake id records.
        "token_time": interaction.created_at.timestamp(),
        "filesize_limit": interaction.filesize_limit,
        "command": interaction.command.name if interaction.command else "",
    }


async def refuse(interaction: discord.Interaction, message: str) -> None:
    """A refusal before any response: the response itself, ephemeral."""
    await interaction.response.send_message(message, ephemeral=True)


async def refuse_after_defer(interaction: discord.Interaction, message: str) -> None:
    """A refusal after the public deferral: remove "thinking…", tell only the user."""
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.warning("could not delete the deferred message of interaction %s", interaction.id)
    await interaction.followup.send(message, ephemeral=True)


async def enqueue(interaction: discord.Interaction, kind: str, spec, job_id: str | None = None) -> str | None:
    bot = interaction.client
    try:
        job_id = await submit_job_async(bot.redis, kind, spec, origin_of(interaction), scope=scope_of(interaction),
                                        job_id=job_id)
    except Exception:
        # Redis or the broker is down (redis, kombu and OS errors alike): the user hears it now, not never.
        log.exception("could not queue a %s job", kind)
        await refuse_after_defer(interaction, QUEUE_DOWN)
        return None
    log.info("queued %s job %s for user %s in channel %s", kind, job_id, interaction.user.id, interaction.channel_id)
    return job_id


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    registry = interaction.client.registry
    typed = current.strip().lower()
    names = [n for n in registry.names if n.startswith(typed)] + [n for n in registry.names
                                                                  if typed in n and not n.startswith(typed)]
    return [app_commands.Choice(name=f"{n} — {registry.models[n].description}"[:100], value=n)
            for n in names[:MAX_AUTOCOMPLETE_CHOICES]]


# ---- /waifu --------------------------------------------------------------------------------------------

@app_commands.command(name="waifu", description="A face that does not exist, drawn by a StyleGAN2 model")
@app_commands.describe(seed=f"which face: the same seed always gives the same face (0 to {MAX_SEED}; random if empty)",
                       psi="truncation: lower is more typical, higher more varied (0.7 is typical)",
                       model="which model draws it (see /models)",
                       noise_mode="const (the model's fixed noise, as NVIDIA's generate.py), random, or none",
                       class_index="for conditional models: which class to draw")
@app_commands.rename(class_index="class")
@app_commands.choices(noise_mode=[app_commands.Choice(name=mode, value=mode) for mode in ("const", "random", "none")])
@app_commands.autocomplete(model=model_autocomplete)
async def waifu(interaction: discord.Interaction,
                seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
                psi: app_commands.Range[float, PSI_MIN, PSI_MAX] | None = None,
                model: str | None = None,
                noise_mode: str = "const",
                class_index: app_commands.Range[int, 0] | None = None) -> None:
    try:
        spec = waifu_spec(interaction.client.registry, seed=seed, psi=psi, model=model, noise_mode=noise_mode,
                          class_index=class_index)
    except InputError as e:
        return await refuse(interaction, str(e))
    await interaction.response.defer(thinking=True)
    await enqueue(interaction, "waifu", spec)


# ---- /blend --------------------------------------------------------------------------------------------

@app_commands.command(name="blend", description="A face drawn by a weighted average of several models")
@app_commands.describe(source="seed:N for a face of the base model, or a name saved with /encode",
                       spec="model:percent pairs adding up to 100, like human:60 fox:20 anime:10 pony:10",
                       psi="truncation of a seed source (the base model's default if empty)")
async def blend(interaction: discord.Interaction, source: str, spec: str,
                psi: app_commands.Range[float, PSI_MIN, PSI_MAX] | None = None) -> None:
    bot = interaction.client
    try:
        job_spec = blend_spec(bot.registry, source=source, recipe=spec, psi=psi)
    except InputError as e:
        return await refuse(interaction, str(e))
    if job_spec.source_name is not None and scope_of(interaction) is None:
        return await refuse(interaction, "Saved faces belong to a server; use /blend NAME in a server, "
                                         "or blend a seed here (source seed:42).")
    await interaction.response.defer(thinking=True)
    if job_spec.source_name is not None:
        problem = await saved_face_problem(bot, scope_of(interaction), job_spec)
        if problem:
            return await refuse_after_defer(interaction, problem)
    await enqueue(interaction, "blend", job_spec)


async def saved_face_problem(bot, scope: str, job_spec) -> str | None:
    """The same refusals the worker would give, given now rather than after the queue."""
    name = job_spec.source_name
    try:
        saved_model = await store.saved_latent_model(bot.redis, scope, name)
    except Exception:
        log.exception("could not look up saved face %r", name)
        return QUEUE_DOWN
    if saved_model is None:
        return (f"No face is saved as {name!r} in this server. Save one with /encode photo:<your photo> name:{name}, "
                f"or blend a seed (source seed:42).")
    base = bot.registry.base_for(job_spec.recipe[0][0]).name
    if saved_model and saved_model != base:
        return (f"{name!r} was encoded into {saved_model}, but these models belong to {base}'s family; "
                f"blend models of {saved_model}'s family.")
    return None


# ---- /encode -------------------------------------------------------------------------------------------

@app_commands.command(name="encode", description="Save the face in a photo under a name, to /blend it later")
@app_commands.describe(photo="a photo of one face, JPEG or PNG", name="a name for the face, like obama or my_face",
                       steps="optimisation steps (more is closer and slower; default 100)")
async def encode(interaction: discord.Interaction, photo: discord.Attachment, name: str,
                 steps: app_commands.Range[int, 1, 1000] | None = None) -> None:
    bot = interaction.client
    if scope_of(interaction) is None:
        return await refuse(interaction, "Faces are saved per server; use /encode in a server channel.")
    try:
        name = validate_latent_name(name)
        steps = validate_steps(steps) if steps is not None else None
        # Discord tells type, size and pixel count up front: refuse before downloading anything.
        check_attachment(photo.content_type, photo.size, photo.width, photo.height)
    except InputError as e:
        return await refuse(interaction, str(e))
    await interaction.response.defer(thinking=True)
    try:
        data = await photo.read()
    except discord.HTTPException as e:
        log.warning("downloading attachment %s failed: %s", photo.id, e)
        return await refuse_after_defer(interaction, "I couldn't download the photo from Discord. Attach it again.")
    try:
        await asyncio.to_thread(validate_photo_bytes, data)
    except InputError as e:
        return await refuse_after_defer(interaction, str(e))
    job_id = new_job_id()
    try:
        # The worker gets the bytes under a key with a TTL, never the CDN URL (signed, and it expires).
        await bot.redis.set(store.upload_key(job_id), data, ex=store.UPLOAD_TTL_S)
        spec = encode_spec(bot.registry, name=name, photo_key=store.upload_key(job_id), steps=steps)
    except InputError as e:
        return await refuse_after_defer(interaction, str(e))
    except Exception:
        log.exception("could not store the photo for job %s", job_id)
        return await refuse_after_defer(interaction, QUEUE_DOWN)
    await enqueue(interaction, "encode", spec, job_id=job_id)


# ---- /models -------------------------------------------------------------------------------------------

@app_commands.command(name="models", description="The models this bot can draw with")
async def models(interaction: discord.Interaction) -> None:
    registry = interaction.client.registry
    embed = discord.Embed(title="Models", description=registry.describe()[:4096])
    embed.set_footer(text="/waifu model:NAME · /blend seed:42 human:60 fox:40")
    await interaction.response.send_message(embed=embed, ephemeral=True)


COMMANDS = (waifu, blend, encode, models)


def register(tree: app_commands.CommandTree) -> None:
    for command in COMMANDS:
        tree.add_command(command)
