"""/_test/ routes: how a test drives the fake (send a slash command, program failures) and reads it back."""
from __future__ import annotations

import base64

from aiohttp import web

from . import payloads
from .bodies import image_size, json_reply
from .gateway import Gateway
from .rest import new_token
from .world import Fault, InteractionRecord, StoredFile, World

# Application command option types (Discord API docs, "Application Command Option Type").
OPTION_TYPES = {"string": 3, "integer": 4, "boolean": 5, "user": 6, "channel": 7, "role": 8, "number": 10,
                "attachment": 11}


class TestControl:
    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_test/state", self.state),
            web.post("/_test/config", self.config),
            web.post("/_test/reset", self.reset),
            web.post("/_test/interactions", self.send_interaction),
            web.get("/_test/interactions", self.list_interactions),
            web.get("/_test/interactions/{id}", self.get_interaction),
            web.get("/_test/messages", self.messages),
            web.get("/_test/requests", self.requests),
            web.get("/_test/unhandled", self.unhandled),
            web.get("/_test/cdn_fetches", self.cdn_fetches),
            web.get("/_test/commands", self.commands),
            web.post("/_test/faults", self.add_fault),
            web.post("/_test/webhooks", self.create_webhook),
            web.post("/_test/users", self.create_user),
            web.post("/_test/cdn", self.upload_to_cdn),
            web.post("/_test/gateway/reconnect", self.reconnect),
            web.get("/cdn/{path:.*}", self.cdn),
        ]

    async def state(self, request: web.Request) -> web.Response:
        w = self.world
        return json_reply({
            "application_id": w.application_id, "guild_id": w.guild_id, "channel_id": w.channel_id,
            "owner_id": w.owner["id"], "bot_user_id": w.bot_user["id"], "ready_sessions": len(self.gateway.ready_sessions),
            "upload_limit": w.upload_limit, "token_ttl": w.token_ttl, "ack_deadline": w.ack_deadline,
            "api_base": w.base_url + "/api/v10", "gateway_url": w.gateway_url, "gateway_log": w.gateway_log,
        })

    async def config(self, request: web.Request) -> web.Response:
        changes = await request.json()
        for key, kind in (("upload_limit", int), ("token_ttl", float), ("ack_deadline", float)):
            if key in changes:
                setattr(self.world, key, kind(changes[key]))
        return await self.state(request)

    async def reset(self, request: web.Request) -> web.Response:
        self.world.reset_records()
        return json_reply({"ok": True})

    # -- interactions -------------------------------------------------------------------------------
    async def send_interaction(self, request: web.Request) -> web.Response:
        """Body: {"command": "waifu", "options": {"seed": 42}, "type": 2|4, "focused": "model",
        "user_id": ..., "channel_id": ...}. Option types come from the synced command when there is one;
        an attachment option's value is {"filename", "content_type", "data_b64"[, "width", "height", "size"]}."""
        spec = await request.json()
        try:
            interaction = self._interaction_payload(spec)
        except ValueError as exc:
            return json_reply({"error": str(exc)}, status=400)
        record = InteractionRecord(interaction, self.world.now())
        self.world.interactions[record.id] = record
        self.world.interactions_by_token[record.token] = record
        delivered = await self.gateway.dispatch_to_all("INTERACTION_CREATE", interaction)
        if not delivered:
            return json_reply({"error": "no bot is connected to the gateway", **record.to_json()}, status=409)
        return json_reply(record.to_json())

    def _find_command(self, name: str) -> dict | None:
        for command in self.world.guild_commands.get(self.world.guild_id, []) + self.world.global_commands:
            if command["name"] == name:
                return command
        return None

    def _interaction_payload(self, spec: dict) -> dict:
        world = self.world
        name = spec["command"]
        command = self._find_command(name)
        declared = {o["name"]: o for o in (command or {}).get("options", [])}
        focused = spec.get("focused")
        options, resolved_attachments = [], {}
        for option_name, value in (spec.get("options") or {}).items():
            if command is not None and option_name not in declared:
                raise ValueError(f"/{name} has no option {option_name!r}; it has {sorted(declared)}")
            option_type = declared[option_name]["type"] if option_name in declared else _guess_type(value)
            if option_type == OPTION_TYPES["attachment"]:
                attachment = self._store_attachment(value)
                resolved_attachments[attachment["id"]] = attachment
                value = attachment["id"]
            option = {"name": option_name, "type": option_type, "value": value}
            if option_name == focused:
                option["focused"] = True
            options.append(option)
        if command is not None:
            missing = [o["name"] for o in declared.values() if o.get("required") and o["name"] not in spec.get("options", {})]
            if missing and spec.get("type", 2) == 2:
                raise ValueError(f"/{name} needs {missing}")
        data = {"id": (command or {}).get("id", payloads.snowflake()), "name": name, "type": 1, "options": options}
        if command is not None and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved_attachments:
            data["resolved"] = {"attachments": resolved_attachments}
        user = world.users.get(spec.get("user_id") or world.owner["id"])
        if user is None:
            raise ValueError(f"unknown user {spec.get('user_id')}; create one with POST /_test/users")
        channel = world.channels[spec.get("channel_id") or world.channel_id]
        return {
            "id": payloads.snowflake(), "application_id": world.application_id, "type": spec.get("type", 2),
            "data": data, "guild_id": world.guild_id, "guild": {"id": world.guild_id, "locale": "en-US", "features": []},
            "channel_id": channel["id"], "channel": channel, "member": payloads.member(user),
            "token": new_token(), "version": 1, "app_permissions": "2147483647", "locale": "en-US",
            "guild_locale": "en-US", "entitlements": [], "authorizing_integration_owners": {"0": world.guild_id},
            "context": 0, "attachment_size_limit": world.upload_limit,
        }

    def _store_attachment(self, value: dict) -> dict:
        data = base64.b64decode(value.get("data_b64", ""))
        att_id = payloads.snowflake()
        filename = value.get("filename", "upload.png")
        path = f"/cdn/ephemeral-attachments/{att_id}/{filename}"
        self.world.cdn[path] = StoredFile(filename, value.get("content_type"), data)
        width, height = image_size(data)
        # A test may make the attachment claim other sizes than its bytes have, as a hostile client could.
        return payloads.attachment(att_id, filename, int(value.get("size", len(data))), self.world.base_url + path,
                                   content_type=value.get("content_type"), width=value.get("width", width),
                                   height=value.get("height", height), ephemeral=True)

    async def list_interactions(self, request: web.Request) -> web.Response:
        return json_reply([r.to_json() for r in self.world.interactions.values()])

    async def get_interaction(self, request: web.Request) -> web.Response:
        record = self.world.interactions.get(request.match_info["id"])
        if record is None:
            return json_reply({"error": "unknown interaction"}, status=404)
        answer = record.to_json()
        with_bytes = request.query.get("bytes", "1") != "0"
        ids = [record.original_message_id, *record.followup_ids]
        answer["messages"] = [self.world.messages[i].to_json(with_bytes) for i in ids if i in self.world.messages]
        return json_reply(answer)

    # -- records ------------------------------------------------------------------------------------
    async def messages(self, request: web.Request) -> web.Response:
        return json_reply(self.world.messages_json(request.query.get("channel_id"),
                                                   with_bytes=request.query.get("bytes", "1") != "0"))

    async def requests(self, request: web.Request) -> web.Response:
        return json_reply(self.world.requests)

    async def unhandled(self, request: web.Request) -> web.Response:
        return json_reply(self.world.unhandled)

    async def cdn_fetches(self, request: web.Request) -> web.Response:
        return json_reply(self.world.cdn_fetches)

    async def commands(self, request: web.Request) -> web.Response:
        return json_reply({"global": self.world.global_commands, "guilds": self.world.guild_commands,
                           "syncs": self.world.command_syncs})

    # -- programming the world ----------------------------------------------------------------------
    async def add_fault(self, request: web.Request) -> web.Response:
        """Body: {"method": "POST", "path": regex, "status": 429, "count": 1, "retry_after": 0.5,
        "global": false} or any status with "code"/"message" (e.g. 404 10015 right after a deferral)."""
        spec = await request.json()
        status = int(spec.get("status", 429))
        headers = {}
        if status == 429:
            retry_after = float(spec.get("retry_after", 0.5))
            body = {"message": "You are being rate limited.", "retry_after": retry_after,
                    "global": bool(spec.get("global", False)), "code": 0}
            # Via marks a Discord 429 (not a Cloudflare ban) for discord.py; the rest is what Discord sends.
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                       "X-RateLimit-Scope": "shared" if not spec.get("global") else "global"}
            if spec.get("global"):
                headers["X-RateLimit-Global"] = "true"
        else:
            body = {"message": spec.get("message", "fault injected by test"), "code": int(spec.get("code", 0))}
        fault = Fault(spec.get("method", "*").upper(), spec.get("path", ".*"), status, body,
                      int(spec.get("count", 1)), headers)
        self.world.faults.append(fault)
        return json_reply({"ok": True})

    async def create_webhook(self, request: web.Request) -> web.Response:
        spec = await request.json() if request.can_read_body else {}
        webhook_id = payloads.snowflake()
        token = new_token()
        channel_id = spec.get("channel_id") or self.world.channel_id
        self.world.webhooks[webhook_id] = {"id": webhook_id, "token": token, "channel_id": channel_id,
                                           "name": spec.get("name", "dnebot watch")}
        return json_reply({
            "id": webhook_id, "token": token, "channel_id": channel_id,
            "url": f"{self.world.base_url}/api/v10/webhooks/{webhook_id}/{token}",
            # what a user pastes from Discord's UI; discord.py's Webhook.from_url wants this shape
            "discord_url": f"https://discord.com/api/webhooks/{webhook_id}/{token}",
        })

    async def create_user(self, request: web.Request) -> web.Response:
        spec = await request.json() if request.can_read_body else {}
        return json_reply(self.world.add_user(spec.get("username", "someone")))

    async def upload_to_cdn(self, request: web.Request) -> web.Response:
        return json_reply(self._store_attachment(await request.json()))

    async def reconnect(self, request: web.Request) -> web.Response:
        return json_reply({"sessions": await self.gateway.ask_reconnect()})

    async def cdn(self, request: web.Request) -> web.Response:
        stored = self.world.cdn.get("/cdn/" + request.match_info["path"])
        self.world.cdn_fetches.append({"path": request.path, "at": self.world.now(), "found": stored is not None})
        if stored is None:
            return web.Response(status=404, text="no such file")
        return web.Response(body=stored.data, content_type=stored.content_type or "application/octet-stream")


def _guess_type(value) -> int:
    if isinstance(value, bool):
        return OPTION_TYPES["boolean"]
    if isinstance(value, int):
        return OPTION_TYPES["integer"]
    if isinstance(value, float):
        return OPTION_TYPES["number"]
    if isinstance(value, dict):
        return OPTION_TYPES["attachment"]
    return OPTION_TYPES["string"]
