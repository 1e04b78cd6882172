"""The watcher without Discord: run-dir parsing, upload fitting, completeness, state across restarts."""
import io
import json
import logging

import numpy as np
import pytest
from PIL import Image

from bot import watch
from bot.run_dirs import latest_metric, read_progress, sample_grids
from bot.watch_discord import Destination
from bot.watch_fit import fit_upload, parse_size, read_complete_image, ImageIncomplete


def png(width: int, height: int, noise: bool = False, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    if noise:
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        pixels = np.zeros((height, width, 3), np.uint8)
        pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
        pixels[..., 1] = seed * 40 % 256
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


class Recorder:
    """Stands in for post_image: keeps what would have been posted."""

    def __init__(self):
        self.posts = []

    def __call__(self, destination, content, filename, data):
        self.posts.append((content, filename, data))
        return {"id": str(len(self.posts))}


def webhook() -> Destination:
    return Destination.webhook("http://127.0.0.1:9/api/v10/webhooks/123/" + "t" * 68)


def run_once(run_dirs, recorder, limit=10 * 2**20, state=None):
    watcher = watch.Watcher(list(run_dirs), webhook(), limit, state, post=recorder)
    watcher.run(interval=0.05, once=True)
    return watcher


def test_grids_sorted_in_the_order_training_writes_them(tmp_path):
    for name in ["fakes000400.png", "reals.png", "fakes000200.png", "fakes_init.png", "network-snapshot-000200.pkl",
                 "fakes12.png", "log.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [g.name for g in sample_grids(tmp_path)] == ["reals.png", "fakes_init.png", "fakes000200.png",
                                                         "fakes000400.png"]


def test_progress_from_ada_stats_and_from_log_lines(tmp_path):
    (tmp_path / "stats.jsonl").write_text(
        json.dumps({"Progress/kimg": {"num": 1, "mean": 200.0, "std": 0}, "Timing/sec_per_kimg":
                    {"num": 1, "mean": 72.5, "std": 0}}) + "\n{not json\n" + '{"Progress/kimg": {"num": 1, "mea')
    progress = read_progress(tmp_path)
    assert (progress.kimg, progress.sec_per_kimg) == (200.0, 72.5)
    with open(tmp_path / "stats.jsonl", "a") as handle:
        handle.write("\n" + json.dumps({"Progress/kimg": {"num": 1, "mean": 400.1, "std": 0},
                                        "Timing/sec_per_kimg": {"num": 1, "mean": 80.0, "std": 0}}) + "\n")
    assert read_progress(tmp_path).sec_per_kimg == 80.0
    assert read_progress(tmp_path, kimg=200).sec_per_kimg == 72.5, "a grid gets the tick that produced it"
    other = tmp_path / "tf"
    other.mkdir()
    (other / "log.txt").write_text("tick 1     kimg 140.3    lod 0.00  minibatch 32   time 12m 30s     "
                                   "sec/tick 700.1   sec/kimg 4.99    maintenance 0.0  gpumem 7.1\n")
    assert read_progress(other).sec_per_kimg == 4.99


def test_latest_metric_skips_malformed_lines_and_later_snapshots(tmp_path):
    lines = [{"results": {"fid50k_full": 40.1}, "snapshot_pkl": "network-snapshot-000200.pkl", "timestamp": 1.0},
             {"results": {"fid50k_full": 20.5}, "snapshot_pkl": "network-snapshot-000400.pkl", "timestamp": 2.0}]
    (tmp_path / "metric-fid50k_full.jsonl").write_text(
        json.dumps(lines[0]) + "\ngarbage\n" + json.dumps(lines[1]) + "\n")
    assert latest_metric(tmp_path).value == 20.5
    assert latest_metric(tmp_path, up_to_kimg=200).value == 40.1


def test_fit_re_encodes_then_downscales_under_the_limit():
    data = png(1024, 512, noise=True)
    image = Image.open(io.BytesIO(data))
    kept = fit_upload(data, image, "fakes000000.png", len(data) + 2**20)
    assert kept.data == data and kept.filename == "fakes000000.png"
    jpeg = fit_upload(data, image, "fakes000000.png", 900 * 1024)
    assert jpeg.filename == "fakes000000.jpg" and not jpeg.downscaled and len(jpeg.data) <= 900 * 1024
    small = fit_upload(data, image, "fakes000000.png", 200 * 1024)
    assert small.downscaled and len(small.data) <= 200 * 1024
    assert Image.open(io.BytesIO(small.data)).size == (small.width, small.height)


def test_parse_size():
    assert parse_size("10MiB") == 10 * 2**20
    assert parse_size("25MB") == 25_000_000
    assert parse_size("8388608") == 8388608
    with pytest.raises(ValueError, match="10MiB"):
        parse_size("ten")


def test_half_written_png_is_incomplete(tmp_path):
    data = png(256, 128, noise=True)
    path = tmp_path / "fakes000000.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageIncomplete, match="IEND"):
        read_complete_image(path)
    path.write_bytes(data)
    assert read_complete_image(path)[1].size == (256, 128)


def test_posts_each_grid_once_across_restarts(tmp_path):
    run = tmp_path / "00001-demo"
    run.mkdir()
    (run / "fakes000000.png").write_bytes(png(64, 64))
    recorder = Recorder()
    run_once([run], recorder)
    assert len(recorder.posts) == 1
    assert "00001-demo" in recorder.posts[0][0] and "kimg 0" in recorder.posts[0][0]
    run_once([run], recorder)
    assert len(recorder.posts) == 1, "a restarted watcher must not post again"
    (run / "fakes000004.png").write_bytes(png(64, 64, seed=1))
    run_once([run], recorder)
    assert len(recorder.posts) == 2 and "kimg 4" in recorder.posts[1][0]


def test_partial_file_waits_and_missing_dir_warns(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    data = png(128, 64, noise=True)
    (run / "fakes000008.png").write_bytes(data[:1000])
    recorder = Recorder()
    with caplog.at_level(logging.WARNING):
        run_once([run, tmp_path / "gone"], recorder)
    assert recorder.posts == []
    assert "missing" in caplog.text and "IEND" in caplog.text
    (run / "fakes000008.png").write_bytes(data)
    run_once([run, tmp_path / "gone"], recorder)
    assert len(recorder.posts) == 1


def test_shared_state_file_and_skip_existing(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for index, run in enumerate(runs):
        run.mkdir()
        (run / "fakes000000.png").write_bytes(png(32, 32, seed=index))
    state = tmp_path / "watch-state.json"
    watcher = watch.Watcher(runs, webhook(), 2**20, state, post=Recorder())
    assert watcher.skip_existing() == 2
    recorder = Recorder()
    run_once(runs, recorder, state=state)
    assert recorder.posts == []
    assert not (runs[0] / watch.STATE_NAME).exists()


def test_unreadable_state_file_is_refused_with_the_fix(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{broken")
    with pytest.raises(ValueError, match="delete it"):
        watch.Watcher([tmp_path], webhook(), 2**20, state, post=Recorder())


def test_webhook_url_routing(monkeypatch):
    monkeypatch.delenv("DISCORD_API_BASE", raising=False)
    token = "a" * 68
    real = Destination.webhook(f"https://discord.com/api/webhooks/1234567890123456789/{token}")
    assert real.url == f"https://discord.com/api/v10/webhooks/1234567890123456789/{token}?wait=true"
    local = Destination.webhook(f"http://127.0.0.1:8123/api/v10/webhooks/42/{token}")
    assert local.url == f"http://127.0.0.1:8123/api/v10/webhooks/42/{token}?wait=true"
    monkeypatch.setenv("DISCORD_API_BASE", "http://127.0.0.1:9999/api/v10")
    assert Destination.webhook(f"https://discord.com/api/webhooks/42/{token}").url.startswith("http://127.0.0.1:9999/")
    with pytest.raises(ValueError, match="Integrations"):
        Destination.webhook("https://example.com/nothing")
    with pytest.raises(ValueError, match="DISCORD_TOKEN"):
        Destination.channel("123", "")


def test_once_fails_on_a_missing_run_dir_and_on_a_post_that_did_not_go_out(tmp_path, capsys):
    dead_webhook = "http://127.0.0.1:9/api/webhooks/1/" + "x" * 68   # nothing listens on port 9
    assert watch.main([str(tmp_path / "nosuchrun"), "--once", "--webhook", dead_webhook]) == 2
    assert capsys.readouterr().err.strip() == f"dnebot watch: no such run directory: {tmp_path / 'nosuchrun'}"
    run = tmp_path / "run"
    run.mkdir()
    (run / "fakes000004.png").write_bytes(png(64, 32))
    assert watch.main([str(run), "--once", "--webhook", dead_webhook]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "dnebot watch: 1 grid(s) could not be posted; run again to retry them")
