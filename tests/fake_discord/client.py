"""Driving the fake from tests: start it as its own process, send slash commands, read what arrived.

Synchronous on purpose (urllib), so sync tests, async tests (via asyncio.to_thread) and other processes
can all use it without sharing an event loop with the bot under test.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeDiscordError(RuntimeError):
    pass


class FakeDiscordClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    # -- plumbing -----------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None, ok_statuses=(200,)) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise FakeDiscordError(f"{method} {path} -> {exc.code}: {exc.read().decode(errors='replace')}") from None

    @property
    def api_base(self) -> str:
        return self.base_url + "/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/gateway"

    def bot_env(self) -> dict[str, str]:
        """Environment that points a bot (or `dnebot watch`) at this fake."""
        return {"DISCORD_API_BASE": self.api_base, "DISCORD_GATEWAY_URL": self.gateway_url}

    # -- reading ------------------------------------------------------------------------------------
    def state(self) -> dict:
        return self._call("GET", "/_test/state")

    def messages(self, channel_id: str | None = None, with_bytes: bool = True) -> list[dict]:
        query = [f"bytes={int(with_bytes)}"] + ([f"channel_id={channel_id}"] if channel_id else [])
        return self._call("GET", "/_test/messages?" + "&".join(query))

    def requests(self) -> list[dict]:
        return self._call("GET", "/_test/requests")

    def unhandled(self) -> list[dict]:
        return self._call("GET", "/_test/unhandled")

    def cdn_fetches(self) -> list[dict]:
        return self._call("GET", "/_test/cdn_fetches")

    def commands(self) -> dict:
        return self._call("GET", "/_test/commands")

    def interaction(self, interaction_id: str, with_bytes: bool = True) -> dict:
        return self._call("GET", f"/_test/interactions/{interaction_id}?bytes={int(with_bytes)}")

    @staticmethod
    def attachment_bytes(attachment: dict) -> bytes:
        return base64.b64decode(attachment["data_b64"])

    # -- waiting ------------------------------------------------------------------------------------
    def wait_for(self, predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake discord: timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def wait_bot_ready(self, timeout: float = 60.0, commands: tuple[str, ...] = ()) -> dict:
        """Waits until a bot holds a gateway session and (optionally) has synced the named commands."""
        def ready():
            state = self.state()
            if not state["ready_sessions"]:
                return None
            synced = {c["name"] for c in self.commands()["global"]}
            synced |= {c["name"] for cs in self.commands()["guilds"].values() for c in cs}
            return state if set(commands) <= synced else None
        return self.wait_for(ready, timeout, what=f"the bot to connect and sync {commands}")

    def wait_interaction(self, interaction_id: str, predicate, timeout: float = 60.0) -> dict:
        def matched():
            record = self.interaction(interaction_id)
            return record if predicate(record) else None
        return self.wait_for(matched, timeout, interval=0.2, what=f"interaction {interaction_id}")

    def wait_result(self, interaction_id: str, timeout: float = 120.0) -> dict:
        """Waits until the deferred message has been filled (or any followup/ack message is final)."""
        def done(record):
            messages = record["messages"]
            return record["callbacks"] and messages and not (messages[0]["flags"] & 128)
        return self.wait_interaction(interaction_id, done, timeout)

    # -- driving ------------------------------------------------------------------------------------
    def send_command(self, command: str, options: dict | None = None, *, user_id: str | None = None,
                     channel_id: str | None = None) -> dict:
        """Dispatches a slash command as INTERACTION_CREATE; returns the interaction record (id, token...)."""
        return self._call("POST", "/_test/interactions", {"command": command, "options": options or {},
                                                          "user_id": user_id, "channel_id": channel_id})

    def send_autocomplete(self, command: str, options: dict, focused: str) -> dict:
        return self._call("POST", "/_test/interactions",
                          {"command": command, "options": options, "focused": focused, "type": 4})

    @staticmethod
    def attachment_option(data: bytes, filename: str, content_type: str | None, **claims) -> dict:
        """An attachment option value; claims (width, height, size) override what the bytes say."""
        return {"filename": filename, "content_type": content_type, "data_b64": base64.b64encode(data).decode(),
                **claims}

    def configure(self, **settings) -> dict:
        """upload_limit (bytes), token_ttl (s), ack_deadline (s)."""
        return self._call("POST", "/_test/config", settings)

    def add_fault(self, path: str, *, method: str = "*", status: int = 429, count: int = 1,
                  retry_after: float = 0.5, code: int = 0, message: str = "", is_global: bool = False) -> None:
        """The next `count` requests whose path (after /api/vN) matches the regex get this answer."""
        self._call("POST", "/_test/faults", {"path": path, "method": method, "status": status, "count": count,
                                             "retry_after": retry_after, "code": code, "message": message,
                                             "global": is_global})

    def create_webhook(self, channel_id: str | None = None, name: str = "dnebot watch") -> dict:
        return self._call("POST", "/_test/webhooks", {"channel_id": channel_id, "name": name})

    def create_user(self, username: str) -> dict:
        return self._call("POST", "/_test/users", {"username": username})

    def ask_reconnect(self) -> int:
        return self._call("POST", "/_test/gateway/reconnect", {})["sessions"]

    def reset(self) -> None:
        self._call("POST", "/_test/reset", {})


class FakeDiscordProcess:
    """`python -m tests.fake_discord` as a child process; use as a context manager."""

    def __init__(self, *, upload_limit: int | None = None, token_ttl: float | None = None,
                 ack_deadline: float | None = None, log_path: Path | None = None) -> None:
        self.args = [sys.executable, "-m", "tests.fake_discord", "--port", "0"]
        for flag, value in (("--upload-limit", upload_limit), ("--token-ttl", token_ttl),
                            ("--ack-deadline", ack_deadline)):
            if value is not None:
                self.args += [flag, str(value)]
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.client: FakeDiscordClient | None = None
        self.info: dict = {}

    def start(self, timeout: float = 20.0) -> FakeDiscordClient:
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            self.process = subprocess.Popen(self.args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr, env=env)
        finally:
            if self.log_path:
                stderr.close()   # the child holds its own copy
        deadline = time.monotonic() + timeout
        line = self.process.stdout.readline()
        if not line or time.monotonic() > deadline:
            self.stop()
            raise FakeDiscordError("the fake Discord did not start (see its stderr)")
        self.info = json.loads(line)
        self.client = FakeDiscordClient(f"http://127.0.0.1:{self.info['port']}")
        return self.client

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> FakeDiscordClient:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
