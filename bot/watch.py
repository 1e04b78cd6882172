"""`dnebot watch`: post each new sample grid of one or more training runs to a Discord channel or webhook.

One new message per grid, never an edit: Discord caps edits of messages older than an hour (error 30046), and a
channel of snapshots reads as the run's history. What was posted is kept on disk (RUN_DIR/.dnebot-watch.json, or
--state FILE), so a restarted watcher neither posts a grid twice nor skips one. Torch-free: it runs beside
training on any box, and `dnebot train --channel/--webhook` runs it in a thread.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.run_dirs import SampleGrid, latest_metric, read_progress, sample_grids
from bot.watch_discord import (DEFAULT_UPLOAD_LIMIT, Destination, DestinationRefused, PostFailed, UploadTooLarge,
                               guild_upload_limit, post_image)
from bot.watch_fit import FittedImage, ImageIncomplete, fit_upload, format_bytes, parse_size, read_complete_image

log = logging.getLogger("dnebot.watch")

STATE_NAME = ".dnebot-watch.json"
# A file untouched this long is finished even if this watcher never saw it grow (e.g. after a restart).
SETTLE_S = 10.0
DISCORD_CONTENT_LIMIT = 2000


class StateFile:
    """Which grids each destination has had, per run: {"version": 1, "runs": {run: {destination: [names]}}}."""

    def __init__(self, path: Path):
        self.path = path
        self.runs: dict[str, dict[str, list[str]]] = {}
        try:
            data = json.loads(path.read_text())
            self.runs = {str(run): {str(dest): list(names) for dest, names in dests.items()}
                         for run, dests in data.get("runs", {}).items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError, TypeError) as error:
            raise ValueError(f"watcher state {path} is unreadable ({error}): starting from scratch would post "
                             "every grid again; fix the file, or delete it to do just that") from None

    def posted(self, run: str, destination: str) -> set[str]:
        return set(self.runs.get(run, {}).get(destination, []))

    def mark(self, run: str, destination: str, name: str) -> None:
        names = self.runs.setdefault(run, {}).setdefault(destination, [])
        if name not in names:
            names.append(name)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"version": 1, "runs": self.runs}, indent=1))
            os.replace(tmp, self.path)
        except OSError as error:
            log.warning("cannot record watcher state in %s (%s): a restart may post again; use --state FILE "
                        "somewhere writable", self.path, error)


@dataclass
class RunWatch:
    """One run directory as this watcher sees it."""
    run_dir: Path
    state: StateFile
    state_key: str
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)   # name → (size, mtime_ns) at the last poll
    broken: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → signature already warned about
    missing_warned: bool = False
    atomic_writes: bool = False   # the writer renames finished files into place (our trainer): no need to wait
    waiting: int = 0              # grids seen at the last poll that were still being written

    @property
    def name(self) -> str:
        return self.run_dir.resolve().name

    def ready_grids(self, destination: str):
        """Yields (grid, bytes, decoded image) for each grid to post now, one at a time: a run that has piled up
        fifty 7680×4096 grids must not be decoded all at once. Sets `waiting` to the number still being written."""
        self.waiting = 0
        if not self.run_dir.is_dir():
            if not self.missing_warned:
                log.warning("run directory %s is missing; still watching for it", self.run_dir)
                self.missing_warned = True
            return
        if self.missing_warned:
            log.info("run directory %s is back", self.run_dir)
            self.missing_warned = False
        posted = self.state.posted(self.state_key, destination)
        try:
            grids = sample_grids(self.run_dir)
        except OSError as error:
            log.warning("cannot list %s: %s", self.run_dir, error)
            return
        for grid in grids:
            if grid.name in posted:
                continue
            try:
                stat = grid.path.stat()
            except OSError:
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            stable = (self.atomic_writes or self.seen.get(grid.name) == signature
                      or time.time() - stat.st_mtime > SETTLE_S)
            self.seen[grid.name] = signature
            if not stable:
                self.waiting += 1
                continue
            if self.broken.get(grid.name) == signature:
                continue
            try:
                data, image = read_complete_image(grid.path)
            except ImageIncomplete as error:
                log.warning("%s: not posted yet: %s", self.run_dir, error)
                self.broken[grid.name] = signature
                continue
            except OSError as error:
                log.warning("%s: cannot read %s: %s", self.run_dir, grid.name, error)
                continue
            yield grid, data, image


def caption(run_name: str, grid: SampleGrid, run_dir: Path, fitted: FittedImage) -> str:
    progress = read_progress(run_dir, grid.kimg)
    parts = [f"**{run_name}** — `{grid.name}`"]
    if grid.label == "reals":
        parts.append("training images")
    elif grid.label == "init":
        parts.append("kimg 0 (before training)")
    else:
        parts.append(f"kimg {grid.kimg}")
    if progress.sec_per_kimg is not None and grid.label not in ("reals", "init"):
        parts.append(f"{progress.sec_per_kimg:.1f} s/kimg")
    metric = latest_metric(run_dir, up_to_kimg=grid.kimg if grid.label != "reals" else None)
    if metric is not None:
        at = f" @ kimg {metric.kimg}" if metric.kimg is not None else ""
        parts.append(f"{metric.name} {metric.value:.2f}{at}")
    text = " · ".join(parts)
    if fitted.downscaled:
        text += f"\n(downscaled from {fitted.original_width}×{fitted.original_height} to fit the upload limit)"
    return text[:DISCORD_CONTENT_LIMIT]


class Watcher:
    def __init__(self, run_dirs: list[Path], destination: Destination, upload_limit: int,
                 state_path: Path | None = None, post=post_image, atomic_writes: bool = False):
        self.destination = destination
        self.upload_limit = upload_limit
        self.post = post
        self.posted_total = self.failed_total = 0   # for --once's exit status
        self.runs = []
        shared = StateFile(state_path) if state_path else None
        for run_dir in run_dirs:
            if shared:
                self.runs.append(RunWatch(run_dir, shared, str(run_dir.resolve()), atomic_writes=atomic_writes))
            else:
                self.runs.append(RunWatch(run_dir, StateFile(run_dir / STATE_NAME), ".", atomic_writes=atomic_writes))

    def poll(self) -> tuple[int, int]:
        """Post every grid that is ready; returns (posted, still being written). Raises DestinationRefused."""
        posted = waiting = 0
        for run in self.runs:
            for grid, data, image in run.ready_grids(self.destination.key):
                if not self._post_grid(run, grid, data, image):
                    break   # Discord is unreachable: keep the order, try again next poll
                posted += 1
            waiting += run.waiting
        return posted, waiting

    def skip_existing(self) -> int:
        """Mark every grid already on disk as posted (to attach to a long run without flooding the channel)."""
        count = 0
        for run in self.runs:
            if run.run_dir.is_dir():
                for grid in sample_grids(run.run_dir):
                    run.state.mark(run.state_key, self.destination.key, grid.name)
                    count += 1
        return count

    def _post_grid(self, run: RunWatch, grid: SampleGrid, data: bytes, image) -> bool:
        limit = self.upload_limit
        while True:
            try:
                fitted = fit_upload(data, image, grid.name, limit)
            except ValueError as error:
                log.error("%s/%s is not posted: %s", run.name, grid.name, error)
                run.broken[grid.name] = run.seen.get(grid.name, (0, 0))
                return True   # nothing to retry until the file changes; go on with the next grid
            try:
                message = self.post(self.destination, caption(run.name, grid, run.run_dir, fitted),
                                    fitted.filename, fitted.data)
            except UploadTooLarge:
                # Our idea of the limit was too generous: the real one is below what was just refused,
                # and later posts keep to it too.
                limit = int(min(limit, len(fitted.data)) * 0.8)
                self.upload_limit = min(self.upload_limit, limit)
                log.warning("Discord refused the upload as too large; retrying under %s", format_bytes(limit))
                continue
            except PostFailed as error:
                log.warning("posting %s/%s failed (%s); it is retried on the next poll (or next run)",
                            run.name, grid.name, error)
                self.failed_total += 1
                return False
            break
        run.state.mark(run.state_key, self.destination.key, grid.name)
        self.posted_total += 1
        log.info("posted %s/%s as %s to %s (message %s)", run.name, grid.name, fitted.describe(),
                 self.destination.key, message.get("id", "?"))
        return True

    def run(self, interval: float, once: bool = False, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while True:
            _, waiting = self.poll()
            if once:
                if waiting:
                    # Files seen for the first time: look again once they had a moment to finish.
                    time.sleep(min(interval, 2.0))
                    self.poll()
                return
            if stop.wait(interval):
                # A last look, so a grid written just before the stop still goes out.
                for _ in range(5):
                    if not self.poll()[1]:
                        break
                    time.sleep(min(interval, 2.0))
                return


class BackgroundWatch:
    """A watcher in a thread, for a training loop that posts its own grids."""

    def __init__(self, watcher: Watcher, interval: float = 5.0):
        self.watcher = watcher
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(interval,), name="dnebot-watch", daemon=True)

    def _run(self, interval: float) -> None:
        try:
            self.watcher.run(interval, stop=self.stop_event)
        except DestinationRefused as error:
            self.error = error
            log.error("%s; training goes on without posting", error)

    def start(self) -> "BackgroundWatch":
        self.thread.start()
        return self

    def finish(self, timeout: float = 300.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def destination_from_args(args) -> Destination:
    if args.webhook:
        return Destination.webhook(args.webhook)
    return Destination.channel(args.channel, os.environ.get("DISCORD_TOKEN", ""))


def upload_limit_from_args(args) -> int:
    if args.upload_limit:
        return parse_size(args.upload_limit)
    if args.channel:
        return guild_upload_limit(args.channel, os.environ.get("DISCORD_TOKEN", "")) or DEFAULT_UPLOAD_LIMIT
    return DEFAULT_UPLOAD_LIMIT


def add_destination_args(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--channel", help="channel ID to post to with the bot's token (env DISCORD_TOKEN)")
    group.add_argument("--webhook", help="webhook URL to post to (https://discord.com/api/webhooks/ID/TOKEN)")
    parser.add_argument("--upload-limit", metavar="SIZE",
                        help="upload limit, e.g. 10MiB (default: the channel's guild limit when the bot can read "
                             "it, else 10MiB)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnebot watch", description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="training run directories")
    add_destination_args(parser, required=True)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between polls (default 30)")
    parser.add_argument("--once", action="store_true", help="post what is ready now, then exit")
    parser.add_argument("--state", type=Path, help="state file (default: .dnebot-watch.json in each run dir)")
    parser.add_argument("--skip-existing", action="store_true",
                        help="treat grids already on disk as posted; post only new ones")
    return parser


def setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="dnebot watch: %(levelname)s %(message)s", stream=sys.stderr)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        destination = destination_from_args(args)
        limit = upload_limit_from_args(args)
        watcher = Watcher(args.run_dirs, destination, limit, args.state)
    except ValueError as error:
        print(f"dnebot watch: {error}", file=sys.stderr)
        return 2
    missing = [str(run_dir) for run_dir in args.run_dirs if not run_dir.is_dir()]
    if args.once and missing:
        # A long-running watcher waits for a run dir to appear; a one-shot pass over a missing one is a typo.
        print(f"dnebot watch: no such run directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    log.info("watching %d run(s) for %s, upload limit %s", len(args.run_dirs), destination.key, format_bytes(limit))
    if args.skip_existing:
        log.info("marked %d existing grid(s) as posted", watcher.skip_existing())
    try:
        watcher.run(args.interval, once=args.once)
    except DestinationRefused as error:
        print(f"dnebot watch: stopped: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    if args.once:
        if watcher.failed_total:
            print(f"dnebot watch: {watcher.failed_total} grid(s) could not be posted; run again to retry them",
                  file=sys.stderr)
            return 1
        if not watcher.posted_total:
            log.info("no new sample grids to post")
    return 0
