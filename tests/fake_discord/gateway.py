"""The gateway half: one WebSocket per bot connection, zlib-stream compressed when the client asks.

The handshake discord.py expects: HELLO; the client heartbeats at once and sends IDENTIFY; READY (with the
guild as unavailable) then GUILD_CREATE with the full guild; heartbeats are ACKed. RESUME replays what
the session missed, then RESUMED. Events sent by tests (INTERACTION_CREATE) go to every ready session.
"""
from __future__ import annotations

import asyncio
import json
import uuid
import zlib

from aiohttp import WSMsgType, web

from .world import World

HEARTBEAT_INTERVAL_MS = 41250
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME, OP_RECONNECT = 0, 1, 2, 6, 7
OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 9, 10, 11


class Session:
    """One gateway session; outlives its socket so that RESUME can replay."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.sequence = 0
        self.sent: list[dict] = []
        self.socket: "Connection | None" = None


class Connection:
    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.deflate = zlib.compressobj() if compress else None
        self.lock = asyncio.Lock()

    async def send(self, frame: dict) -> None:
        text = json.dumps(frame)
        async with self.lock:
            if self.deflate is None:
                await self.ws.send_str(text)
            else:
                # zlib-stream: one shared deflate context per connection, each message ending in a sync flush
                data = self.deflate.compress(text.encode()) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)


class Gateway:
    def __init__(self, world: World) -> None:
        self.world = world
        self.sessions: dict[str, Session] = {}

    @property
    def ready_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.socket is not None]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        if request.query.get("encoding", "json") != "json":
            await ws.close(code=4002, message=b"the fake speaks json only")
            return ws
        conn = Connection(ws, compress)
        await conn.send({"op": OP_HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None})
        session: Session | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == OP_HEARTBEAT:
                    self.world.gateway_log.append({"op": "heartbeat", "at": self.world.now()})
                    await conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
                elif op == OP_IDENTIFY:
                    session = await self._identify(conn, data)
                elif op == OP_RESUME:
                    session = await self._resume(conn, data)
                else:
                    self.world.gateway_log.append({"op": op, "at": self.world.now()})
        finally:
            if session is not None and session.socket is conn:
                session.socket = None
        return ws

    async def _identify(self, conn: Connection, data: dict) -> Session:
        world = self.world
        world.gateway_log.append({"op": "identify", "at": world.now(), "intents": data.get("intents")})
        session = Session()
        self.sessions[session.id] = session
        session.socket = conn
        ready = {
            "v": 10, "user": world.bot_user, "guilds": [{"id": world.guild_id, "unavailable": True}],
            "session_id": session.id, "resume_gateway_url": world.gateway_url, "shard": [0, 1],
            "application": {"id": world.application_id, "flags": 0}, "private_channels": [], "relationships": [],
        }
        await self._dispatch(session, "READY", ready)
        await self._dispatch(session, "GUILD_CREATE", world.guild_payload())
        return session

    async def _resume(self, conn: Connection, data: dict) -> Session | None:
        self.world.gateway_log.append({"op": "resume", "at": self.world.now()})
        session = self.sessions.get(data.get("session_id"))
        if session is None:
            await conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        session.socket = conn
        seen = data.get("seq") or 0
        for frame in [f for f in session.sent if f["s"] > seen]:
            await conn.send(frame)
        await self._dispatch(session, "RESUMED", {})
        return session

    async def _dispatch(self, session: Session, event: str, data: dict) -> None:
        session.sequence += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": session.sequence, "d": data}
        session.sent.append(frame)
        if session.socket is not None:
            await session.socket.send(frame)

    async def dispatch_to_all(self, event: str, data: dict) -> int:
        sessions = self.ready_sessions
        for session in sessions:
            await self._dispatch(session, event, data)
        return len(sessions)

    async def ask_reconnect(self) -> int:
        """Sends op 7 RECONNECT: the client closes and RESUMEs, as after Discord's routine restarts."""
        sessions = self.ready_sessions
        for session in sessions:
            await session.socket.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})
        return len(sessions)
