"""Assembles the fake: REST under /api/v{N}, the gateway WebSocket at /gateway, test hooks under /_test/.

Every /api request is logged; one that matches no route is recorded in `unhandled` (tests assert it stays
empty) and answered 404 with a message naming it, so a gap in the fake fails loudly instead of hiding.
"""
from __future__ import annotations

import sys

from aiohttp import web

from .bodies import error_reply, json_reply
from .control import TestControl
from .gateway import Gateway
from .rest import Rest
from .world import World

API_PREFIX = "/api/v{version:\\d+}"
# aiohttp's own limit (1 MiB) would answer 413 before our upload_limit is consulted; ours decides.
CLIENT_MAX_SIZE = 1024 ** 3
# Routes a bot token must authorise; webhook and interaction routes carry their own token in the path.
_TOKEN_IN_PATH = ("/webhooks/", "/interactions/")


def build_app(world: World) -> web.Application:
    gateway = Gateway(world)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[_api_middleware(world)])
    app.add_routes(Rest(world).routes(API_PREFIX))
    app.add_routes([web.get("/gateway", gateway.handle), web.get("/", gateway.handle)])
    app.add_routes(TestControl(world, gateway).routes())
    app["world"], app["gateway"] = world, gateway
    return app


def _api_middleware(world: World):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if not request.path.startswith("/api/"):
            return await handler(request)
        route_path = "/" + request.path.split("/", 3)[-1]   # without /api/vN
        entry = {"method": request.method, "path": route_path, "query": dict(request.query), "at": world.now(),
                 "auth": request.headers.get("Authorization", "")[:4]}
        world.requests.append(entry)
        if request.match_info.http_exception is not None:
            world.unhandled.append({"method": request.method, "path": route_path})
            print(f"fake discord: UNHANDLED {request.method} {request.path}", file=sys.stderr, flush=True)
            response = error_reply(404, 0, f"fake discord: unhandled route {request.method} {route_path}")
        elif not route_path.startswith(_TOKEN_IN_PATH) and not request.headers.get("Authorization", "").startswith("Bot "):
            response = error_reply(401, 0, "401: Unauthorized")
        elif (fault := world.take_fault(request.method, route_path)) is not None:
            response = json_reply(fault.body, status=fault.status, headers=fault.headers)
            entry["fault"] = fault.status
        else:
            response = await handler(request)
        entry["status"] = response.status
        if "logged_body" in request:
            entry["body"] = request["logged_body"]
        return response

    return middleware


def run(host: str, port: int, world: World) -> None:
    """Binds first (port 0 picks a free one), then prints one JSON line with the addresses, then serves."""
    import asyncio
    import json

    async def serve() -> None:
        runner = web.AppRunner(build_app(world), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]
        world.base_url = f"http://{host}:{bound}"
        world.gateway_url = f"ws://{host}:{bound}/gateway"
        print(json.dumps({"port": bound, "api_base": world.base_url + "/api/v10", "gateway_url": world.gateway_url,
                          "control": world.base_url + "/_test"}), flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
