"""`dnebot generate`: a drop-in for NVIDIA's generate.py (stylegan2-ada-pytorch), on any model file dnebot reads.

Same options, same seedNNNN.png names, same pixels: z = RandomState(seed).randn(1, z_dim), label zeros or one-hot,
G(z, c, truncation_psi, noise_mode), then x·127.5+128 clamped and truncated to uint8 (reference §2.10).
"""
from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np


def parse_seeds(text: str) -> list[int]:
    """'0,1,42' or ranges '0-3' (inclusive), as generate.py's num_range."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise argparse.ArgumentTypeError(f"seed range {part!r} runs backwards")
            seeds.extend(range(lo, hi + 1))
        elif re.fullmatch(r"\d+", part):
            seeds.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"{part!r} is not a seed or a range like 0-3")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dnebot generate", description=__doc__.splitlines()[0])
    p.add_argument("--network", dest="network", required=True, metavar="FILE",
                   help="model file: NVIDIA .pkl (PyTorch or TensorFlow), rosinality .pt, or .safetensors")
    p.add_argument("--seeds", type=parse_seeds, help="list of random seeds, e.g. 0,1,42 or 0-3")
    p.add_argument("--trunc", dest="trunc", type=float, default=1.0, help="truncation psi (default 1)")
    p.add_argument("--trunc-cutoff", type=int, default=None,
                   help="truncate only the first N ws (generate.py never sets this; default: all)")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class label (conditional models)")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], default="const", help="noise mode")
    p.add_argument("--projected-w", metavar="FILE", help="render a projection .npz (key 'w') instead of seeds")
    p.add_argument("--outdir", required=True, metavar="DIR", help="where to save the images")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seeds is None and args.projected_w is None:
        print("dnebot generate: --seeds option is required when not using --projected-w", file=sys.stderr)
        return 2
    if os.path.exists(args.outdir) and not os.path.isdir(args.outdir):
        print(f"dnebot generate: --outdir {args.outdir} is a file, not a folder; give a folder for the PNGs",
              file=sys.stderr)
        return 2

    import torch
    from models.formats import ModelFileError, load_generator
    from models.render import MAX_SEED, png_bytes, to_uint8

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    print(f'Loading networks from "{args.network}"...')
    try:
        G = load_generator(args.network)
    except ModelFileError as e:
        print(f"dnebot generate: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.outdir, exist_ok=True)

    if args.projected_w is not None:
        if args.seeds is not None:
            print("warn: --seeds is ignored when using --projected-w")
        ws = torch.tensor(np.load(args.projected_w)["w"], dtype=torch.float32)
        if ws.shape[1:] != (G.num_ws, G.w_dim):
            print(f"dnebot generate: {args.projected_w} holds ws of shape {tuple(ws.shape)}; this model needs "
                  f"[N, {G.num_ws}, {G.w_dim}]", file=sys.stderr)
            return 1
        with torch.no_grad():
            for idx, w in enumerate(ws):
                img = G.synthesis(w.unsqueeze(0), noise_mode=args.noise_mode)
                _save(os.path.join(args.outdir, f"proj{idx:02d}.png"), png_bytes(to_uint8(img)[0]))
        return 0

    label = torch.zeros([1, G.c_dim])
    if G.c_dim != 0:
        if args.class_idx is None:
            print("dnebot generate: this is a conditional network: pick a class with --class "
                  f"(0 to {G.c_dim - 1})", file=sys.stderr)
            return 2
        if not 0 <= args.class_idx < G.c_dim:
            print(f"dnebot generate: --class must be between 0 and {G.c_dim - 1}", file=sys.stderr)
            return 2
        label[:, args.class_idx] = 1
    elif args.class_idx is not None:
        print("warn: --class=lbl ignored when running on an unconditional network")
    bad = [s for s in args.seeds if s > MAX_SEED]
    if bad:
        print(f"dnebot generate: seeds must be between 0 and {MAX_SEED}; got {bad[0]}", file=sys.stderr)
        return 2

    with torch.no_grad():
        for idx, seed in enumerate(args.seeds):
            print(f"Generating image for seed {seed} ({idx}/{len(args.seeds)}) ...")
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
            img = G(z, label if G.c_dim else None, truncation_psi=args.trunc,
                    truncation_cutoff=args.trunc_cutoff, noise_mode=args.noise_mode)
            _save(os.path.join(args.outdir, f"seed{seed:04d}.png"), png_bytes(to_uint8(img)[0]))
    return 0


def _save(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    sys.exit(main())
