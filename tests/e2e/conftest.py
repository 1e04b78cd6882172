"""End to end: the fake Discord, a real Celery worker and the bot (`dnebot bot`), each its own process.

Redis is tests/conftest.py's redis_url (the machine's on 127.0.0.1:6379 when it runs), DB 15, every key under
a namespace unique to this run (removed after). The models are a tiny zoo of real generators (tests.integration.conftest.build_tiny_zoo), so
renders take milliseconds on a CPU. `dnebot local` renders the reference PNGs with the same zoo.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import running_process, stop_process
from tests.fake_discord import FakeDiscordProcess

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120
COMMAND_NAMES = ("waifu", "blend", "encode", "models")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def e2e_env(e2e_dir, redis_url):
    import redis

    from tests.integration.conftest import build_tiny_zoo

    client = redis.Redis.from_url(redis_url)
    zoo = e2e_dir / "zoo"
    zoo.mkdir()
    namespace = f"dnebot-e2e-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DNEBOT_REDIS_URL": redis_url, "DNEBOT_NAMESPACE": namespace,
           "DNEBOT_MODELS": str(build_tiny_zoo(zoo)), "OMP_NUM_THREADS": "1", "DNEBOT_DEVICE": "cpu",
           "PYTHONUNBUFFERED": "1"}
    yield env
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def fake_discord(e2e_dir):
    with FakeDiscordProcess(log_path=e2e_dir / "fake_discord.log") as fake:
        yield fake


@pytest.fixture(scope="session")
def worker(e2e_env, e2e_dir):
    argv = [str(BIN / "celery"), "-A", "tasks.celery_app", "worker", "-P", "solo", "-Q", "gpu.fast,gpu.slow",
            "--loglevel", "INFO", "-n", f"{e2e_env['DNEBOT_NAMESPACE']}@%h", "--without-mingle", "--without-gossip"]
    with running_process(argv, e2e_env, REPO, e2e_dir / "worker.log", b" ready.", "the Celery worker",
                         START_TIMEOUT_S) as proc:
        yield proc


class BotProcess:
    """`dnebot bot` pointed at the fake; start/stop so a test can restart it."""

    def __init__(self, env: dict, log: Path) -> None:
        self.env, self.log, self.proc = env, log, None

    def start(self, fake) -> None:
        env = {**self.env, **fake.bot_env(), "DISCORD_TOKEN": "e2e-fake-token", "DNEBOT_CONSUMER": "e2e-bot"}
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([str(BIN / "dnebot"), "bot", "--guild-ready-timeout", "0.2"], cwd=REPO,
                                     env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        try:
            fake.wait_for(lambda: self.proc.poll() is not None or fake.state()["ready_sessions"] > 0,
                          START_TIMEOUT_S, what="the bot to connect")
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited:\n{self.log.read_text(errors='replace')[-4000:]}")
            fake.wait_bot_ready(START_TIMEOUT_S, commands=COMMAND_NAMES)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


@pytest.fixture(scope="session")
def bot(e2e_env, e2e_dir, fake_discord, worker):
    process = BotProcess(e2e_env, e2e_dir / "bot.log")
    process.start(fake_discord)
    try:
        yield process
    finally:
        process.stop()
        if os.environ.get("DNEBOT_SHOW_E2E_LOGS"):
            for name in ("bot.log", "worker.log", "fake_discord.log"):
                print(f"==== {name}\n{(e2e_dir / name).read_text(errors='replace')[-6000:]}")


@pytest.fixture
def fake(fake_discord, bot):
    """The fake with the bot connected; each test must leave no unhandled route behind."""
    yield fake_discord
    assert fake_discord.unhandled() == [], "the bot called routes the fake does not know"


@pytest.fixture(scope="session")
def local_png(e2e_env, e2e_dir):
    """`dnebot local COMMAND` with the same zoo: the PNG bytes it writes (cached per command)."""
    cache: dict[str, bytes] = {}

    def render(command: str) -> bytes:
        if command not in cache:
            out = e2e_dir / "local-out"
            env = {**e2e_env, "DNEBOT_HOME": str(e2e_dir / "local-home")}
            env.pop("DNEBOT_NAMESPACE")
            done = subprocess.run([str(BIN / "dnebot"), "local", command, "--out", str(out)], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            cache[command] = Path(done.stdout.strip().splitlines()[-1]).read_bytes()
        return cache[command]

    return render
