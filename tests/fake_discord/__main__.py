"""`python -m tests.fake_discord --port N`: serve the fake Discord on 127.0.0.1 until killed.

The first line on stdout is JSON: {"port", "api_base", "gateway_url", "control"}. Point a bot at it with
DISCORD_API_BASE=<api_base> DISCORD_GATEWAY_URL=<gateway_url>.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from .server import run
from .world import DEFAULT_UPLOAD_LIMIT, INTERACTION_ACK_DEADLINE_S, INTERACTION_TOKEN_TTL_S, World


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_discord", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--upload-limit", type=int, default=DEFAULT_UPLOAD_LIMIT, help="bytes per message")
    parser.add_argument("--token-ttl", type=float, default=INTERACTION_TOKEN_TTL_S,
                        help="seconds an interaction token can follow up (Discord: 900)")
    parser.add_argument("--ack-deadline", type=float, default=INTERACTION_ACK_DEADLINE_S,
                        help="seconds to acknowledge an interaction (Discord: 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="fake discord: %(levelname)s %(name)s: %(message)s")
    # SIGTERM from a test's cleanup should end the process quietly
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args.host, args.port, World(upload_limit=args.upload_limit, token_ttl=args.token_ttl,
                                    ack_deadline=args.ack_deadline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
