"""`dnebot convert FILE OUT.safetensors`: any model file dnebot reads → dnebot's safetensors format."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dnebot convert", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("file", help="NVIDIA .pkl (PyTorch or TensorFlow), rosinality .pt, or .safetensors")
    p.add_argument("out", help="where to write the .safetensors")
    p.add_argument("--name", help="model name stored in the lineage (default: the file's name)")
    p.add_argument("--ancestor", help="name of the root model of its family (default: derived from its noise maps, "
                                      "which fine-tuning keeps)")
    args = p.parse_args(argv)
    if not args.out.endswith(".safetensors"):
        print("dnebot convert: OUT must end in .safetensors", file=sys.stderr)
        return 2

    from models.formats import ModelFileError, convert, read_network
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    try:
        net = read_network(args.file)
        lineage = dict(net.lineage or net.default_lineage())
        if args.name:
            lineage["name"] = args.name
        if args.ancestor:
            lineage["ancestor"] = args.ancestor
        convert(net, args.out, lineage=lineage)
    except ModelFileError as e:
        print(f"dnebot convert: {e}", file=sys.stderr)
        return 1
    c = net.config
    print(f"{args.file} ({net.format}, {c.get('img_resolution')} px) → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
