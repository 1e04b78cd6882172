"""What the fake Discord knows: one bot, one guild with one text channel, users, messages, interactions.

Everything the bot sends is kept here so tests can read it back (the /_test/ routes). Times are wall-clock
seconds (time.time()) because tests compare them across processes.
"""
from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field

from . import payloads

BOT_TOKEN_HINT = "any non-empty token is accepted"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024   # discord.py's DEFAULT_FILE_SIZE_LIMIT_BYTES, guild boost tier 0
INTERACTION_ACK_DEADLINE_S = 3.0          # Discord answers 10062 Unknown interaction after this
INTERACTION_TOKEN_TTL_S = 15 * 60.0        # followups with the token fail after this (401, 50027)


@dataclass
class StoredFile:
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class StoredMessage:
    payload: dict
    files: dict[str, StoredFile] = field(default_factory=dict)   # attachment id -> bytes
    via: str = "channel"            # channel | webhook | interaction-original | interaction-followup
    interaction_id: str | None = None
    ephemeral: bool = False
    edits: int = 0

    def to_json(self, with_bytes: bool = True) -> dict:
        attachments = []
        for att in self.payload["attachments"]:
            entry = dict(att)
            stored = self.files.get(att["id"])
            if stored is not None and with_bytes:
                entry["data_b64"] = base64.b64encode(stored.data).decode()
            attachments.append(entry)
        return {**self.payload, "attachments": attachments, "via": self.via, "ephemeral": self.ephemeral,
                "interaction_id": self.interaction_id, "edits": self.edits}


@dataclass
class InteractionRecord:
    payload: dict                    # the INTERACTION_CREATE data as dispatched
    dispatched_at: float
    callbacks: list[dict] = field(default_factory=list)
    original_message_id: str | None = None
    deferred: bool = False           # answered with type 5 and no followup/edit has filled it yet
    ephemeral: bool = False
    followup_ids: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.payload["id"]

    @property
    def token(self) -> str:
        return self.payload["token"]

    def to_json(self) -> dict:
        first = self.callbacks[0]["at"] if self.callbacks else None
        return {
            "id": self.id, "token": self.token, "type": self.payload["type"],
            "name": self.payload.get("data", {}).get("name"), "dispatched_at": self.dispatched_at,
            "ack_latency_s": None if first is None else first - self.dispatched_at,
            "callbacks": self.callbacks, "original_message_id": self.original_message_id,
            "ephemeral": self.ephemeral, "followup_ids": self.followup_ids,
        }


@dataclass
class Fault:
    """A programmed failure: the next `count` requests matching method+path get this answer instead."""
    method: str
    path_pattern: str
    status: int
    body: dict
    count: int = 1
    headers: dict = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in ("*", method) and re.search(self.path_pattern, path) is not None


class World:
    def __init__(self, *, upload_limit: int = DEFAULT_UPLOAD_LIMIT, token_ttl: float = INTERACTION_TOKEN_TTL_S,
                 ack_deadline: float = INTERACTION_ACK_DEADLINE_S) -> None:
        self.upload_limit = upload_limit
        self.token_ttl = token_ttl
        self.ack_deadline = ack_deadline
        self.base_url = ""           # set once the server knows its port (attachment URLs point back at it)
        self.gateway_url = ""
        self.application_id = payloads.snowflake()
        self.bot_user = payloads.user(self.application_id, "dnebot", bot=True)
        self.owner = payloads.user(payloads.snowflake(), "owner")
        self.guild_id = payloads.snowflake()
        self.channel_id = payloads.snowflake()
        self.users = {u["id"]: u for u in (self.bot_user, self.owner)}
        self.channels = {self.channel_id: payloads.text_channel(self.channel_id, self.guild_id, "faces")}
        self.messages: dict[str, StoredMessage] = {}
        self.message_order: list[str] = []
        self.interactions: dict[str, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.cdn: dict[str, StoredFile] = {}          # cdn path -> file (attachments users "uploaded")
        self.webhooks: dict[str, dict] = {}           # id -> {id, token, channel_id}
        self.global_commands: list[dict] = []
        self.guild_commands: dict[str, list[dict]] = {}
        self.command_syncs: list[dict] = []
        self.requests: list[dict] = []
        self.unhandled: list[dict] = []
        self.faults: list[Fault] = []
        self.cdn_fetches: list[dict] = []             # downloads of attachments (path, time)
        self.gateway_log: list[dict] = []             # identify/resume/heartbeat seen, for tests

    # -- guild -----------------------------------------------------------------------------------
    def guild_payload(self) -> dict:
        members = [payloads.member(u) for u in self.users.values()]
        return payloads.guild(self.guild_id, "dnebot test guild", self.owner["id"],
                              list(self.channels.values()), members)

    def add_user(self, username: str) -> dict:
        created = payloads.user(payloads.snowflake(), username)
        self.users[created["id"]] = created
        return created

    # -- messages ---------------------------------------------------------------------------------
    def store_message(self, message: StoredMessage) -> StoredMessage:
        self.messages[message.payload["id"]] = message
        self.message_order.append(message.payload["id"])
        return message

    def messages_json(self, channel_id: str | None = None, with_bytes: bool = True) -> list[dict]:
        found = [self.messages[i] for i in self.message_order]
        if channel_id:
            found = [m for m in found if m.payload["channel_id"] == channel_id]
        return [m.to_json(with_bytes) for m in found]

    # -- faults -----------------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.count -= 1
                return fault
        return None

    def reset_records(self) -> None:
        self.messages.clear()
        self.message_order.clear()
        self.requests.clear()
        self.unhandled.clear()
        self.faults.clear()
        self.command_syncs.clear()
        self.cdn_fetches.clear()
        self.gateway_log.clear()

    def now(self) -> float:
        return time.time()
