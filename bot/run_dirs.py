"""Reading the run directories that StyleGAN training code writes, without torch.

One reader serves stylegan2-ada-pytorch, stylegan3, the TF-era StyleGAN2 code and `dnebot train`: they all write
`reals.png`, `fakes_init.png`, `fakes<kimg:06d>.png`, a `log.txt` of status lines, and (ADA-PT, SG3, ours)
`stats.jsonl` and `metric-<name>.jsonl`. Training code writes these files in place, not atomically, so every
reader here tolerates half-written files and malformed lines: it skips them and says so.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FAKES_PATTERN = re.compile(r"^fakes(\d{6})\.(png|jpg|jpeg)$")
# ADA-PT/SG3 status line: "tick 12 kimg 48.0 time 1h 02m ... sec/tick 300.1 sec/kimg 75.02 ..."
LOG_KIMG = re.compile(r"\bkimg\s+([0-9]+(?:\.[0-9]+)?)")
LOG_SEC_PER_KIMG = re.compile(r"\bsec/kimg\s+([0-9]+(?:\.[0-9]+)?)")
SNAPSHOT_KIMG = re.compile(r"network-snapshot-(\d{6})")


@dataclass(frozen=True)
class SampleGrid:
    """One image grid a run wrote; `order` sorts grids the way the run produced them."""
    path: Path
    kimg: int | None          # None for reals.png
    label: str                # "reals", "init" or "kimg 200"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def order(self) -> tuple[int, int]:
        if self.label == "reals":
            return (0, 0)
        if self.label == "init":
            return (1, 0)
        return (2, self.kimg or 0)


@dataclass(frozen=True)
class Metric:
    name: str                 # e.g. "fid50k_full"
    value: float
    kimg: int | None          # of the snapshot it was measured on, when the line names one


@dataclass(frozen=True)
class Progress:
    """What the run's logs say about where it is: the latest tick."""
    kimg: float | None = None
    sec_per_kimg: float | None = None


def sample_grids(run_dir: Path) -> list[SampleGrid]:
    grids = []
    for path in run_dir.iterdir():
        if path.name == "reals.png":
            grids.append(SampleGrid(path, None, "reals"))
        elif path.name == "fakes_init.png":
            grids.append(SampleGrid(path, 0, "init"))
        elif match := FAKES_PATTERN.match(path.name):
            kimg = int(match.group(1))
            grids.append(SampleGrid(path, kimg, f"kimg {kimg}"))
    return sorted(grids, key=lambda grid: grid.order)


def read_jsonl(path: Path) -> list[dict]:
    """Every well-formed JSON object line; a malformed line (often the one being written right now) is skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        log.warning("cannot read %s: %s", path, error)
        return []
    records = []
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            # The last line without its newline is most likely still being written: not worth a warning.
            if number != len(lines):
                log.warning("%s line %d is not JSON; skipped", path, number)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            log.warning("%s line %d is not a JSON object; skipped", path, number)
    return records


def _stat_value(record: dict, name: str) -> float | None:
    """ADA-PT writes each stat as {num, mean, std}; our trainer may write a bare number."""
    value = record.get(name)
    if isinstance(value, dict):
        value = value.get("mean")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _nearest(ticks: list[Progress], kimg: float | None) -> Progress | None:
    """The tick that produced a grid at `kimg` (the closest one; the latest when kimg is None or ties)."""
    if not ticks:
        return None
    if kimg is None:
        return ticks[-1]
    known = [tick for tick in ticks if tick.kimg is not None]
    return min(reversed(known), key=lambda tick: abs(tick.kimg - kimg)) if known else ticks[-1]


def ticks_from_stats(run_dir: Path) -> list[Progress]:
    path = run_dir / "stats.jsonl"
    if not path.exists():
        return []
    ticks = []
    for record in read_jsonl(path):
        kimg = _stat_value(record, "Progress/kimg")
        sec_per_kimg = _stat_value(record, "Timing/sec_per_kimg")
        if kimg is not None or sec_per_kimg is not None:
            ticks.append(Progress(kimg, sec_per_kimg))
    return ticks


def ticks_from_log(run_dir: Path) -> list[Progress]:
    try:
        lines = (run_dir / "log.txt").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    ticks = []
    for line in lines:
        kimg, sec = LOG_KIMG.search(line), LOG_SEC_PER_KIMG.search(line)
        if kimg and sec:
            ticks.append(Progress(float(kimg.group(1)), float(sec.group(1))))
    return ticks


def read_progress(run_dir: Path, kimg: float | None = None) -> Progress:
    """The tick nearest `kimg` (default: the latest), from stats.jsonl when the run writes one (ADA-PT, SG3,
    ours), else from the status lines of log.txt (TF-era code)."""
    return _nearest(ticks_from_stats(run_dir), kimg) or _nearest(ticks_from_log(run_dir), kimg) or Progress()


def latest_metric(run_dir: Path, up_to_kimg: int | None = None) -> Metric | None:
    """The newest metric result, from metric-*.jsonl; with up_to_kimg, none measured on a later snapshot."""
    best: tuple[float, Metric] | None = None
    for path in sorted(run_dir.glob("metric-*.jsonl")):
        for record in read_jsonl(path):
            results = record.get("results")
            if not isinstance(results, dict):
                continue
            snapshot = SNAPSHOT_KIMG.search(str(record.get("snapshot_pkl", "")))
            kimg = int(snapshot.group(1)) if snapshot else None
            if up_to_kimg is not None and kimg is not None and kimg > up_to_kimg:
                continue
            timestamp = record.get("timestamp")
            when = float(timestamp) if isinstance(timestamp, (int, float)) else 0.0
            for name, value in results.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    metric = Metric(str(name), float(value), kimg)
                    # Newer timestamps win; within one line the last result listed wins.
                    if best is None or when >= best[0]:
                        best = (when, metric)
    return best[1] if best else None
