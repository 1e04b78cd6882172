"""Loading benchmark (a script, not a test): a ~380 MB config-f network pickle vs torch.load of the same tensors.

    .venv/bin/python tests/bench_loading.py [--dir /tmp/dnebot-bench]

Builds, in /tmp (never committed), a 1024 px config-f (channel_base 32768) snapshot the way training runs write
them — G, D and G_ema (~30.4M + ~29M + ~30.4M parameters) — and the same tensors as a plain state dict saved with
torch.save. Each load runs in a fresh subprocess (cold Python, warm page cache), which reports wall time and its
peak RSS above the interpreter's baseline (VmHWM after − VmRSS before). Targets: pickle ≤ 1.5× torch.load time;
peak memory < 2× the file's tensor bytes.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy, torch
torch.set_num_threads(1)
from models.formats import read_network, load_generator
from models.formats.detect import read_network_pickle
mode, path = sys.argv[1], sys.argv[2]
def vm(field):  # kB; VmHWM belongs to this process image (ru_maxrss would inherit the parent's peak)
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0])
base = vm("VmRSS")
t0 = time.perf_counter()
if mode == "torch":
    obj = torch.load(path, map_location="cpu", weights_only=True)
elif mode == "pickle":            # every tensor of the file (G, D, G_ema) parsed to arrays
    import os
    obj = read_network_pickle(path, os.path.getsize(path))
elif mode == "generator":         # … and G_ema built as a Generator
    obj = load_generator(path)
t = time.perf_counter() - t0
peak = vm("VmHWM") - base
print(json.dumps(dict(seconds=t, peak_bytes=peak * 1024)))
"""


def build_fixtures(directory: Path) -> tuple[Path, Path, int]:
    import torch
    sys.path.insert(0, str(ROOT))
    from models.formats.safe_pickle import load
    from models.networks import Generator, GeneratorConfig
    from tests.formats.nvidia_writer import write_network_pickle

    torch.set_num_threads(1)
    directory.mkdir(parents=True, exist_ok=True)
    pkl, pt = directory / "config-f-1024.pkl", directory / "config-f-1024-state-dict.pt"
    if not pkl.exists():
        G = Generator(GeneratorConfig(img_resolution=1024, channel_base=32768)).eval()
        write_network_pickle(pkl, G, "ada")
    # The same tensors, as a plain state dict: every array of the pickle under its dotted path.
    with open(pkl, "rb") as f:
        snapshot = load(f)
    tensors = {}

    def walk(record, prefix):
        for group in ("_parameters", "_buffers"):
            for name, a in (record.state.get(group) or {}).items():
                if a is not None:
                    tensors[prefix + name] = torch.from_numpy(a.copy())
        for name, child in (record.state.get("_modules") or {}).items():
            walk(child, f"{prefix}{name}.")

    for key in ("G", "D", "G_ema"):
        walk(snapshot[key], f"{key}.")
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    if not pt.exists():
        torch.save(tensors, pt)
    return pkl, pt, nbytes


def run(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode, str(path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default="/tmp/dnebot-bench", type=Path)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    t0 = time.perf_counter()
    pkl, pt, nbytes = build_fixtures(args.dir)
    print(f"fixtures ready in {time.perf_counter() - t0:.1f} s: {pkl} ({pkl.stat().st_size / 1e6:.0f} MB), "
          f"{pt} ({pt.stat().st_size / 1e6:.0f} MB); tensor bytes {nbytes / 1e6:.0f} MB")
    for f in (pkl, pt):  # warm the page cache so both loads read from memory
        f.read_bytes()
    results = {}
    for mode, path in (("torch", pt), ("pickle", pkl), ("generator", pkl)):
        runs = [run(mode, path) for _ in range(args.repeats)]
        best = min(r["seconds"] for r in runs)
        peak = max(r["peak_bytes"] for r in runs)
        results[mode] = (best, peak)
        print(f"{mode:>9}: best of {args.repeats} {best:.3f} s, peak RSS +{peak / 1e6:.0f} MB "
              f"({peak / nbytes:.2f}× tensor bytes)")
    ratio = results["pickle"][0] / results["torch"][0]
    print(f"pickle / torch.load time: {ratio:.2f}× (target ≤ 1.5×); "
          f"pickle peak memory: {results['pickle'][1] / nbytes:.2f}× tensor bytes (target < 2×); "
          f"with the Generator built: {results['generator'][0] / results['torch'][0]:.2f}× time, "
          f"{results['generator'][1] / nbytes:.2f}× memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
