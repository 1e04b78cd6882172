"""The REST half of the fake: the routes discord.py 2.7.1 and our watcher call, with Discord's errors.

Rules kept from Discord (each one something a real bot trips on):
- 3 s to acknowledge an interaction (10062 Unknown interaction after), one acknowledgement only (40060).
- The interaction token works for `token_ttl` seconds (15 min; 401 / 50027 Invalid Webhook Token after).
- The first followup after a deferral edits the "thinking" message and inherits its ephemeral flag.
- Uploads over the limit answer 413 / 40005; more than 10 files or 2000 characters answer 400 / 50035.
"""
from __future__ import annotations

import secrets

from aiohttp import web

from . import payloads
from .bodies import RequestBody, error_reply, image_size, json_reply, read_body
from .world import StoredFile, StoredMessage, World

EPHEMERAL = 1 << 6
LOADING = 1 << 7
MAX_FILES = 10
MAX_CONTENT = 2000
MAX_EMBEDS = 10


class Rest:
    def __init__(self, world: World) -> None:
        self.world = world

    def routes(self, prefix: str) -> list[web.RouteDef]:
        p = prefix
        return [
            web.get(p + "/users/@me", self.get_me),
            web.get(p + "/oauth2/applications/@me", self.get_application),
            web.get(p + "/gateway", self.get_gateway),
            web.get(p + "/gateway/bot", self.get_gateway_bot),
            web.get(p + "/applications/{app}/commands", self.get_global_commands),
            web.put(p + "/applications/{app}/commands", self.put_global_commands),
            web.get(p + "/applications/{app}/guilds/{guild}/commands", self.get_guild_commands),
            web.put(p + "/applications/{app}/guilds/{guild}/commands", self.put_guild_commands),
            web.post(p + "/interactions/{id}/{token}/callback", self.interaction_callback),
            web.get(p + "/webhooks/{id}/{token}/messages/{message}", self.get_webhook_message),
            web.patch(p + "/webhooks/{id}/{token}/messages/{message}", self.edit_webhook_message),
            web.delete(p + "/webhooks/{id}/{token}/messages/{message}", self.delete_webhook_message),
            web.post(p + "/webhooks/{id}/{token}", self.execute_webhook),
            web.get(p + "/webhooks/{id}/{token}", self.get_webhook),
            web.get(p + "/channels/{channel}", self.get_channel),
            web.post(p + "/channels/{channel}/typing", self.typing),
            web.get(p + "/channels/{channel}/messages", self.list_channel_messages),
            web.post(p + "/channels/{channel}/messages", self.create_channel_message),
            web.get(p + "/channels/{channel}/messages/{message}", self.get_channel_message),
            web.patch(p + "/channels/{channel}/messages/{message}", self.edit_channel_message),
            web.get(p + "/guilds/{guild}", self.get_guild),
            web.get(p + "/guilds/{guild}/channels", self.get_guild_channels),
        ]

    # -- identity and gateway ---------------------------------------------------------------------
    async def get_me(self, request: web.Request) -> web.Response:
        return json_reply(self.world.bot_user)

    async def get_application(self, request: web.Request) -> web.Response:
        return json_reply(payloads.application(self.world.application_id, self.world.owner))

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_reply({"url": self.world.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_reply({"url": self.world.gateway_url, "shards": 1, "session_start_limit": limit})

    # -- application commands -----------------------------------------------------------------------
    def _registered(self, definitions: list[dict], guild_id: str | None) -> list[dict]:
        registered = []
        for definition in definitions:
            entry = {"id": payloads.snowflake(), "application_id": self.world.application_id, "version": "1",
                     "type": 1, "options": [], "default_member_permissions": None, "nsfw": False, **definition}
            if guild_id:
                entry["guild_id"] = guild_id
            registered.append(entry)
        return registered

    async def get_global_commands(self, request: web.Request) -> web.Response:
        return json_reply(self.world.global_commands)

    async def put_global_commands(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        self.world.global_commands = self._registered(body.payload, None)
        self.world.command_syncs.append({"scope": "global", "at": self.world.now(), "names": _names(body.payload)})
        return json_reply(self.world.global_commands)

    async def get_guild_commands(self, request: web.Request) -> web.Response:
        return json_reply(self.world.guild_commands.get(request.match_info["guild"], []))

    async def put_guild_commands(self, request: web.Request) -> web.Response:
        guild_id = request.match_info["guild"]
        body = await read_body(request)
        self.world.guild_commands[guild_id] = self._registered(body.payload, guild_id)
        self.world.command_syncs.append({"scope": guild_id, "at": self.world.now(), "names": _names(body.payload)})
        return json_reply(self.world.guild_commands[guild_id])

    # -- interactions -------------------------------------------------------------------------------
    async def interaction_callback(self, request: web.Request) -> web.Response:
        world = self.world
        record = world.interactions.get(request.match_info["id"])
        if record is None or record.token != request.match_info["token"]:
            return error_reply(404, 10062, "Unknown interaction")
        now = world.now()
        if record.callbacks:
            return error_reply(400, 40060, "Interaction has already been acknowledged.")
        if now - record.dispatched_at > world.ack_deadline:
            return error_reply(404, 10062, "Unknown interaction")
        body = await read_body(request)
        callback_type = body.payload.get("type")
        data = body.payload.get("data") or {}
        flags = int(data.get("flags") or 0)
        problem = self._check_message(data, body)
        if problem is not None:
            return problem
        record.callbacks.append({"type": callback_type, "at": now, "data": data, "flags": flags})
        message = None
        if callback_type in (4, 5):
            record.ephemeral = bool(flags & EPHEMERAL)
            record.deferred = callback_type == 5
            content = "" if callback_type == 5 else data.get("content") or ""
            message = self._new_message(
                body if callback_type == 4 else RequestBody(), record.payload["channel_id"],
                content=content, embeds=data.get("embeds") if callback_type == 4 else [],
                flags=(flags & EPHEMERAL) | (LOADING if callback_type == 5 else 0),
                via="interaction-original", interaction_id=record.id, message_type=20)
            record.original_message_id = message.payload["id"]
        if request.query.get("with_response") not in ("1", "true"):
            return web.Response(status=204)
        answer = {"interaction": {
            "id": record.id, "type": record.payload["type"],
            "response_message_id": record.original_message_id,
            "response_message_loading": callback_type == 5,
            "response_message_ephemeral": record.ephemeral,
        }}
        if message is not None:
            answer["resource"] = {"type": callback_type, "message": message.payload}
        elif callback_type is not None:
            answer["resource"] = {"type": callback_type}
        return json_reply(answer)

    def _interaction_for_token(self, webhook_id: str, token: str) -> tuple[object | None, web.Response | None]:
        record = self.world.interactions_by_token.get(token)
        if record is None or webhook_id != self.world.application_id:
            return None, None
        if self.world.now() - record.dispatched_at > self.world.token_ttl:
            return record, error_reply(401, 50027, "Invalid Webhook Token")
        if not record.callbacks:
            return record, error_reply(404, 10015, "Unknown Webhook")
        return record, None

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        message, problem = self._webhook_message(request)
        return problem or json_reply(message.payload)

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        message, problem = self._webhook_message(request)
        if problem:
            return problem
        body = await read_body(request)
        return self._edit(message, body)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        message, problem = self._webhook_message(request)
        if problem:
            return problem
        self.world.messages.pop(message.payload["id"], None)
        self.world.message_order.remove(message.payload["id"])
        return web.Response(status=204)

    def _webhook_message(self, request: web.Request) -> tuple[StoredMessage | None, web.Response | None]:
        webhook_id, token, wanted = (request.match_info[k] for k in ("id", "token", "message"))
        record, problem = self._interaction_for_token(webhook_id, token)
        if problem:
            return None, problem
        if record is not None:
            message_id = record.original_message_id if wanted == "@original" else wanted
            owned = message_id == record.original_message_id or message_id in record.followup_ids
        else:
            webhook = self.world.webhooks.get(webhook_id)
            if webhook is None or webhook["token"] != token:
                return None, error_reply(404, 10015, "Unknown Webhook")
            message_id = wanted
            owned = message_id in self.world.messages and self.world.messages[message_id].payload.get("webhook_id") == webhook_id
        if not owned or message_id not in self.world.messages:
            return None, error_reply(404, 10008, "Unknown Message")
        return self.world.messages[message_id], None

    async def execute_webhook(self, request: web.Request) -> web.Response:
        webhook_id, token = request.match_info["id"], request.match_info["token"]
        record, problem = self._interaction_for_token(webhook_id, token)
        if problem:
            return problem
        body = await read_body(request)
        checked = self._check_message(body.payload, body)
        if checked is not None:
            return checked
        wait = request.query.get("wait", "false").lower() in ("1", "true")
        if record is not None:
            original = self.world.messages.get(record.original_message_id or "")
            if record.deferred and original is not None:
                # The first followup after a deferral fills the "thinking..." message rather than adding one.
                record.deferred = False
                reply = self._edit(original, body, keep_flags=original.payload["flags"] & EPHEMERAL)
                original.via = "interaction-followup"
                return reply
            flags = int(body.payload.get("flags") or 0) & EPHEMERAL
            message = self._new_message(body, record.payload["channel_id"], flags=flags,
                                        via="interaction-followup", interaction_id=record.id)
            record.followup_ids.append(message.payload["id"])
            return json_reply(message.payload)
        webhook = self.world.webhooks.get(webhook_id)
        if webhook is None or webhook["token"] != token:
            return error_reply(404, 10015, "Unknown Webhook")
        author = payloads.user(webhook_id, body.payload.get("username") or webhook["name"], bot=True)
        message = self._new_message(body, webhook["channel_id"], via="webhook", author=author,
                                    webhook_id=webhook_id)
        return json_reply(message.payload) if wait else web.Response(status=204)

    async def get_webhook(self, request: web.Request) -> web.Response:
        webhook = self.world.webhooks.get(request.match_info["id"])
        if webhook is None or webhook["token"] != request.match_info["token"]:
            return error_reply(404, 10015, "Unknown Webhook")
        return json_reply({"id": webhook["id"], "type": 1, "name": webhook["name"], "avatar": None,
                           "channel_id": webhook["channel_id"], "guild_id": self.world.guild_id,
                           "application_id": None, "token": webhook["token"]})

    # -- channels and guild -------------------------------------------------------------------------
    def _channel(self, request: web.Request) -> tuple[dict | None, web.Response | None]:
        channel = self.world.channels.get(request.match_info["channel"])
        if channel is None:
            return None, error_reply(404, 10003, "Unknown Channel")
        return channel, None

    async def get_channel(self, request: web.Request) -> web.Response:
        channel, problem = self._channel(request)
        return problem or json_reply(channel)

    async def typing(self, request: web.Request) -> web.Response:
        channel, problem = self._channel(request)
        return problem or web.Response(status=204)

    async def list_channel_messages(self, request: web.Request) -> web.Response:
        channel, problem = self._channel(request)
        if problem:
            return problem
        limit = int(request.query.get("limit", "50"))
        found = [m.payload for m in map(self.world.messages.get, reversed(self.world.message_order))
                 if m.payload["channel_id"] == channel["id"] and not m.ephemeral]
        return json_reply(found[:limit])

    async def create_channel_message(self, request: web.Request) -> web.Response:
        channel, problem = self._channel(request)
        if problem:
            return problem
        body = await read_body(request)
        checked = self._check_message(body.payload, body)
        if checked is not None:
            return checked
        if not (body.payload.get("content") or body.payload.get("embeds") or body.files):
            return error_reply(400, 50006, "Cannot send an empty message")
        message = self._new_message(body, channel["id"], via="channel")
        return json_reply(message.payload)

    async def get_channel_message(self, request: web.Request) -> web.Response:
        message, problem = self._channel_message(request)
        return problem or json_reply(message.payload)

    async def edit_channel_message(self, request: web.Request) -> web.Response:
        message, problem = self._channel_message(request)
        if problem:
            return problem
        return self._edit(message, await read_body(request))

    def _channel_message(self, request: web.Request) -> tuple[StoredMessage | None, web.Response | None]:
        channel, problem = self._channel(request)
        if problem:
            return None, problem
        message = self.world.messages.get(request.match_info["message"])
        if message is None or message.payload["channel_id"] != channel["id"] or message.ephemeral:
            return None, error_reply(404, 10008, "Unknown Message")
        return message, None

    async def get_guild(self, request: web.Request) -> web.Response:
        if request.match_info["guild"] != self.world.guild_id:
            return error_reply(404, 10004, "Unknown Guild")
        return json_reply(self.world.guild_payload())

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        if request.match_info["guild"] != self.world.guild_id:
            return error_reply(404, 10004, "Unknown Guild")
        return json_reply(list(self.world.channels.values()))

    # -- messages -----------------------------------------------------------------------------------
    def _check_message(self, payload: dict, body: RequestBody) -> web.Response | None:
        if len(body.files) > MAX_FILES:
            return error_reply(400, 50035, "Invalid Form Body", errors={"files": "at most 10 files"})
        if body.total_upload_bytes > self.world.upload_limit:
            return error_reply(413, 40005, "Request entity too large")
        if len(payload.get("content") or "") > MAX_CONTENT:
            return error_reply(400, 50035, "Invalid Form Body", errors={"content": "Must be 2000 or fewer in length."})
        if len(payload.get("embeds") or []) > MAX_EMBEDS:
            return error_reply(400, 50035, "Invalid Form Body", errors={"embeds": "Must be 10 or fewer in length."})
        return None

    def _attachments(self, body: RequestBody, message_id: str, keep: list[dict] | None = None,
                     ephemeral: bool = False) -> tuple[list[dict], dict[str, StoredFile]]:
        """Stores uploaded files under CDN URLs; `keep` is the attachments an edit retains."""
        attachments, files = list(keep or []), {}
        described = {str(a.get("id")): a for a in body.payload.get("attachments") or []}
        for upload in body.files:
            att_id = payloads.snowflake()
            filename = described.get(str(upload.index), {}).get("filename") or upload.filename
            path = f"/cdn/attachments/{message_id}/{att_id}/{filename}"
            stored = StoredFile(filename, upload.content_type, upload.data)
            self.world.cdn[path] = stored
            files[att_id] = stored
            width, height = image_size(upload.data)
            attachments.append(payloads.attachment(att_id, filename, len(upload.data), self.world.base_url + path,
                                                   content_type=upload.content_type, width=width, height=height,
                                                   ephemeral=ephemeral))
        return attachments, files

    def _new_message(self, body: RequestBody, channel_id: str, *, content: str | None = None,
                     embeds: list | None = None, flags: int = 0, via: str, interaction_id: str | None = None,
                     author: dict | None = None, webhook_id: str | None = None, message_type: int = 0) -> StoredMessage:
        message_id = payloads.snowflake()
        attachments, files = self._attachments(body, message_id, ephemeral=bool(flags & EPHEMERAL))
        from_interaction = interaction_id is not None
        payload = payloads.message(
            message_id, channel_id, author or self.world.bot_user,
            content=body.payload.get("content") or "" if content is None else content,
            embeds=body.payload.get("embeds") if embeds is None else embeds, attachments=attachments,
            flags=flags, guild_id=self.world.guild_id,
            webhook_id=self.world.application_id if from_interaction else webhook_id,
            application_id=self.world.application_id if from_interaction else None,
            message_type=message_type, mentions=self._mentions(body.payload.get("content") or ""))
        return self.world.store_message(StoredMessage(payload, files, via, interaction_id, bool(flags & EPHEMERAL)))

    def _edit(self, message: StoredMessage, body: RequestBody, keep_flags: int | None = None) -> web.Response:
        checked = self._check_message(body.payload, body)
        if checked is not None:
            return checked
        payload = message.payload
        for key in ("content", "embeds", "components"):
            if key in body.payload and body.payload[key] is not None:
                payload[key] = body.payload[key]
        if "attachments" in body.payload or body.files:
            # An edit's `attachments` lists what stays: existing ids kept, new uploads referenced by index.
            listed = body.payload.get("attachments")
            kept_ids = {str(a["id"]) for a in listed} if listed is not None else {a["id"] for a in payload["attachments"]}
            kept = [a for a in payload["attachments"] if a["id"] in kept_ids]
            new, files = self._attachments(body, payload["id"], ephemeral=message.ephemeral)
            payload["attachments"] = kept + new
            message.files = {k: v for k, v in message.files.items() if k in kept_ids} | files
        if keep_flags is not None:
            payload["flags"] = keep_flags
        else:
            payload["flags"] &= ~LOADING
        payload["mentions"] = self._mentions(payload["content"])
        payload["edited_timestamp"] = payloads.iso_now()
        message.edits += 1
        return json_reply(payload)

    def _mentions(self, content: str) -> list[dict]:
        return [u for uid, u in self.world.users.items() if f"<@{uid}>" in content or f"<@!{uid}>" in content]


def _names(definitions) -> list[str]:
    return [d.get("name") for d in definitions] if isinstance(definitions, list) else []


def new_token(nbytes: int = 60) -> str:
    return secrets.token_urlsafe(nbytes)
