"""A protocol-level fake of Discord (REST, gateway WebSocket, webhooks, CDN) for end-to-end tests.

The real, unmodified discord.py talks to it over HTTP and WebSocket on 127.0.0.1; see __main__.py for the
process entry point and client.py for driving it from tests.
"""
from .client import FakeDiscordClient, FakeDiscordError, FakeDiscordProcess

__all__ = ["FakeDiscordClient", "FakeDiscordError", "FakeDiscordProcess"]
