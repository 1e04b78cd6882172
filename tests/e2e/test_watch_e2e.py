"""`dnebot watch` and `dnebot train --webhook` as real processes against the fake Discord (its own process).

The fake is the session's (`fake_discord` in conftest.py); no bot or worker is needed, so these tests do not ask
for them. Each test posts through its own webhook and reads back only that webhook's messages.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20


@pytest.fixture
def fake(fake_discord):
    """The session's fake Discord at Discord's default 10 MiB limit, put back as it was afterwards.

    Shadows conftest's `fake`, which starts the bot and a Celery worker: the watcher needs neither."""
    before = fake_discord.state()["upload_limit"]
    fake_discord.configure(upload_limit=10 * MiB)
    yield fake_discord
    fake_discord.configure(upload_limit=before)


def grid_png(width: int, height: int, seed: int = 0) -> bytes:
    """A grid-like picture: smooth cells plus fine noise, so its PNG is far above 10 MiB at 7680×4096."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 256, width // 256, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(cells).resize((width, height), Image.BILINEAR), dtype=np.int16)
    image = image + rng.integers(-24, 25, image.shape, dtype=np.int16)
    out = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def write_tick(run: Path, kimg: int, sec_per_kimg: float, fid: float | None = None) -> None:
    stat = lambda value: {"num": 1, "mean": value, "std": 0.0}  # noqa: E731
    with open(run / "stats.jsonl", "a") as handle:
        handle.write(json.dumps({"Progress/kimg": stat(kimg), "Timing/sec_per_kimg": stat(sec_per_kimg),
                                 "timestamp": time.time()}) + "\n")
    if fid is not None:
        with open(run / "metric-fid50k_full.jsonl", "a") as handle:
            handle.write(json.dumps({"results": {"fid50k_full": fid}, "metric": "fid50k_full",
                                     "snapshot_pkl": f"network-snapshot-{kimg:06d}.pkl",
                                     "timestamp": time.time()}) + "\n")


def dnebot(fake, *args: str, timeout: float = 300, token: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **fake.bot_env(), "PYTHONUNBUFFERED": "1"}
    if token:
        env["DISCORD_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], cwd=REPO_ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def posted(fake, hook: dict) -> list[dict]:
    return [m for m in fake.messages() if m.get("webhook_id") == hook["id"]]


def test_new_grid_posts_one_message_under_the_limit_and_restarts_post_nothing_twice(fake, tmp_path):
    hook = fake.create_webhook()
    run = tmp_path / "00012-anime-mirror"
    run.mkdir()
    original = grid_png(7680, 4096)
    assert len(original) > 10 * MiB
    (run / "fakes000200.png").write_bytes(original)
    write_tick(run, 200, 72.5, fid=12.34)

    result = dnebot(fake, "watch", str(run), "--webhook", hook["discord_url"], "--once")
    assert result.returncode == 0, result.stderr
    messages = posted(fake, hook)
    assert len(messages) == 1
    text = messages[0]["content"]
    assert "00012-anime-mirror" in text and "kimg 200" in text and "72.5 s/kimg" in text
    assert "fid50k_full 12.34" in text
    (attachment,) = messages[0]["attachments"]
    assert attachment["size"] <= 10 * MiB
    image = Image.open(io.BytesIO(fake.attachment_bytes(attachment)))
    image.load()
    print(f"posted {attachment['filename']}: {image.width}×{image.height}, {attachment['size'] / MiB:.2f} MiB "
          f"(from a {len(original) / MiB:.1f} MiB PNG)")
    assert attachment["width"] == image.width and image.width >= 3840

    again = dnebot(fake, "watch", str(run), "--webhook", hook["url"], "--once")
    assert again.returncode == 0, again.stderr
    assert len(posted(fake, hook)) == 1, "a restarted watcher must not post the same grid again"

    (run / "fakes000204.png").write_bytes(grid_png(2048, 1024, seed=1))
    write_tick(run, 204, 71.0)
    third = dnebot(fake, "watch", str(run), "--webhook", hook["url"], "--once")
    assert third.returncode == 0, third.stderr
    messages = posted(fake, hook)
    assert len(messages) == 2 and "kimg 204" in messages[1]["content"]


def test_partially_written_grid_waits_until_complete(fake, tmp_path):
    hook = fake.create_webhook()
    run = tmp_path / "run"
    run.mkdir()
    data = grid_png(1024, 512)
    (run / "fakes000004.png").write_bytes(data[: len(data) * 2 // 3])
    result = dnebot(fake, "watch", str(run), "--webhook", hook["url"], "--once")
    assert result.returncode == 0
    assert posted(fake, hook) == [] and "not posted yet" in result.stderr
    (run / "fakes000004.png").write_bytes(data)
    dnebot(fake, "watch", str(run), "--webhook", hook["url"], "--once")
    assert len(posted(fake, hook)) == 1


def test_rate_limits_are_waited_out(fake, tmp_path):
    hook = fake.create_webhook()
    run = tmp_path / "run"
    run.mkdir()
    (run / "fakes000000.png").write_bytes(grid_png(512, 256))
    fake.add_fault(r"^/webhooks/", method="POST", status=429, count=2, retry_after=0.6)
    started = time.monotonic()
    result = dnebot(fake, "watch", str(run), "--webhook", hook["url"], "--once")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.2
    assert "rate limit" in result.stderr
    assert len(posted(fake, hook)) == 1


def test_a_webhook_discord_refuses_stops_with_a_clear_message(fake, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "fakes000000.png").write_bytes(grid_png(512, 256))
    url = f"{fake.api_base}/webhooks/111111111111111111/{'x' * 68}"
    hook = {"id": "111111111111111111"}
    result = dnebot(fake, "watch", str(run), "--webhook", url, "--interval", "0.2")
    assert result.returncode == 2
    assert "404" in result.stderr and "create a new one" in result.stderr
    assert posted(fake, hook) == []


def test_channel_post_with_the_bot_token_learns_a_smaller_limit_from_a_413(fake, tmp_path):
    channel = fake.state()["channel_id"]
    fake.configure(upload_limit=MiB)     # the guild says 10 MiB; the API says less
    run = tmp_path / "run"
    run.mkdir()
    (run / "fakes000012.png").write_bytes(grid_png(2048, 1024))
    (run / "fakes000016.png").write_bytes(grid_png(2048, 1024, seed=2))
    already = {m["id"] for m in fake.messages(channel_id=channel, with_bytes=False)}
    result = dnebot(fake, "watch", str(run), "--channel", channel, "--once", token="fake-bot-token")
    assert result.returncode == 0, result.stderr
    messages = [m for m in fake.messages(channel_id=channel) if m["id"] not in already]
    assert [m["content"].split("`")[1] for m in messages] == ["fakes000012.png", "fakes000016.png"]
    assert all(m["attachments"][0]["size"] <= MiB for m in messages)


def test_train_posts_its_own_grids(fake, tmp_path):
    import torch
    from models.networks import Generator, GeneratorConfig
    from models.weights import save_generator

    torch.manual_seed(0)
    config = GeneratorConfig(z_dim=16, w_dim=16, mapping_layers=2, img_resolution=16, channel_base=256,
                             channel_max=32)
    base = tmp_path / "tiny.safetensors"
    save_generator(Generator(config), base, {"name": "tiny", "fine_tuned_from": None, "ancestor": "tiny"})
    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(data / f"{index}.png")
    hook = fake.create_webhook()
    out = tmp_path / "tinycat"
    result = dnebot(fake, "train", "--base", str(base), "--data", str(data), "--out", str(out), "--kimg", "0.016",
                    "--batch", "4", "--threads", "1", "--webhook", hook["url"])
    assert result.returncode == 0, result.stderr
    names = [m["attachments"][0]["filename"] for m in posted(fake, hook)]
    assert names == ["reals.png", "fakes_init.png", "fakes000000.png"]
    # A watcher started afterwards on the same run finds everything posted.
    dnebot(fake, "watch", str(out), "--webhook", hook["url"], "--once")
    assert len(posted(fake, hook)) == 3


def test_polling_watcher_waits_for_a_grid_being_written(fake, tmp_path):
    hook = fake.create_webhook()
    run = tmp_path / "run"
    run.mkdir()
    data = grid_png(1024, 512, seed=3)
    env = {**os.environ, **fake.bot_env(), "PYTHONUNBUFFERED": "1"}
    watcher = subprocess.Popen([sys.executable, "-m", "tasks.cli", "watch", str(run), "--webhook", hook["url"],
                                "--interval", "0.3"], cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        with open(run / "fakes000020.png", "wb") as handle:
            for start in range(0, len(data) - 4096, len(data) // 8):
                handle.write(data[start:start + len(data) // 8])
                handle.flush()
                time.sleep(0.4)     # a slow writer: the watcher polls several times meanwhile
                assert posted(fake, hook) == []
            handle.write(data[handle.tell():])
        fake.wait_for(lambda: posted(fake, hook), timeout=30, what="the grid to be posted")
        time.sleep(1.0)
        assert len(posted(fake, hook)) == 1
    finally:
        watcher.terminate()
        watcher.wait(10)
        watcher.stderr.close()
