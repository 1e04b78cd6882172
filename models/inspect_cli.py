"""`dnebot inspect FILE [--against OTHER]`: what a model file is, and whether two files can be blended."""
from __future__ import annotations

import argparse
import json
import sys

# Settings that change no weight shape and no arithmetic of a blend (reference §5.3).
BLEND_NEUTRAL = {"w_avg_beta", "num_fp16_res"}


SOURCE_VALUE_CHARS = 160   # a training command or a module hash fits; a whole options dict is cut, visibly


def describe(net, config: dict) -> list[str]:
    c = config
    mapping = f"{c['mapping_layers']}-layer mapping, z {c['z_dim']}, w {c['w_dim']}"
    if c["c_dim"]:
        mapping += f", {c['c_dim']} classes"
    extras = []
    if c["conv_clamp"] is not None:
        extras.append(f"conv_clamp {c['conv_clamp']:g}")
    if c["num_fp16_res"]:
        extras.append(f"fp16 on the top {c['num_fp16_res']} resolutions (GPU only)")
    if not c["normalize_latents"]:
        extras.append("z not normalised")
    lineage = net.lineage or net.default_lineage()
    lines = [
        f"file:         {net.path}",
        f"format:       {net.format}",
        f"resolution:   {c['img_resolution']}x{c['img_resolution']}, {c['img_channels']} channels",
        f"architecture: {c['architecture']}, channel_base {c['channel_base']}, channel_max {c['channel_max']}, "
        f"{mapping}" + (f"; {', '.join(extras)}" if extras else ""),
        f"parameters:   {net.parameter_count():,}",
        f"lineage:      name {lineage.get('name')}, fine-tuned from {lineage.get('fine_tuned_from') or '-'}, "
        f"ancestor {lineage.get('ancestor')}",
    ]
    if net.source:
        lines.append("source:")
        for key, value in sorted(net.source.items()):
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            lines.append(f"  {key}: {text if len(text) <= SOURCE_VALUE_CHARS else text[:SOURCE_VALUE_CHARS] + '…'}")
    return lines


def blendability(a, a_config: dict, b, b_config: dict) -> tuple[bool, list[str]]:
    """(can be averaged, lines). Differing shapes or arithmetic refuse; no shared ancestor only warns."""
    differing = sorted(k for k in set(a_config) | set(b_config)
                       if k not in BLEND_NEUTRAL and a_config.get(k) != b_config.get(k))
    lines = []
    if differing:
        detail = ", ".join(f"{k} {a_config.get(k)} vs {b_config.get(k)}" for k in differing)
        return False, [f"blendable:    no: the architectures differ ({detail})"]
    a_shapes = {k: v.shape for k, v in a.weights().items()}
    b_shapes = {k: v.shape for k, v in b.weights().items()}
    if a_shapes != b_shapes:
        diff = sorted(k for k in set(a_shapes) | set(b_shapes) if a_shapes.get(k) != b_shapes.get(k))
        return False, [f"blendable:    no: weight shapes differ ({', '.join(diff[:3])})"]
    la, lb = a.lineage or a.default_lineage(), b.lineage or b.default_lineage()
    fa, fb = a.noise_fingerprint(), b.noise_fingerprint()
    if la.get("ancestor") == lb.get("ancestor") or (fa is not None and fa == fb):
        lines.append(f"blendable:    yes: same architecture and a common ancestor ({la.get('ancestor')})")
    else:
        lines.append("blendable:    yes, but WARNING: no common ancestor found "
                     f"({la.get('ancestor')} vs {lb.get('ancestor')}); weights of independently trained models "
                     "do not correspond, so the average is likely garbage")
    return True, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dnebot inspect", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("file")
    p.add_argument("--against", metavar="OTHER", help="a second model file: can the two be blended?")
    args = p.parse_args(argv)

    from models.formats import ModelFileError, read_network
    from models.formats.build import generator_config
    try:
        net = read_network(args.file)
        config = generator_config(net).to_dict()
        other = read_network(args.against) if args.against else None
        other_config = generator_config(other).to_dict() if other else None
    except ModelFileError as e:
        print(f"dnebot inspect: {e}", file=sys.stderr)
        return 1
    print("\n".join(describe(net, config)))
    if other is not None:
        print()
        print("\n".join(describe(other, other_config)))
        print()
        ok, lines = blendability(net, config, other, other_config)
        print("\n".join(lines))
        return 0 if ok else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
