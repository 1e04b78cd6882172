"""Train the demo model zoo: five small StyleGAN2 generators (human, anime, fox, pony, furry) at 64x64.

Recorded commands (what made the shipped models/zoo/*.safetensors, on 2 CPU cores shared with other jobs):

    python -m models.zoo_train --out models/zoo --human-minutes 18 --finetune-minutes 5
    python -m models.zoo_train --out models/zoo --domains fox,pony,furry --finetune-minutes 5 --threads 1
    python -m models.zoo_train --out models/zoo --domains pony --finetune-minutes 6 --resume

The second run redid three fine-tunes that the first starved (2 OpenMP threads on a busy 2-core machine spin
instead of working: fox got 81 steps in 5 minutes); the third gave pony, the domain furthest from human, six
more minutes on top of its fine-tune. The budgets are wall-clock, so the number of steps each model
got is in its metadata (``source.training.iterations``), with the final losses.

Adversarial training on a laptop CPU would take days, so each generator is distilled from the procedural renderer
(``models/procedural.py``) instead: per step, z ~ N(0, I) from a seeded stream, target = render_face(z, domain),
and the loss is the L1 distance between G(z, psi=1, noise_mode='const') and the target in [-1, 1], at full, half
and quarter resolution (the coarse terms teach the layout and colours first). The network is the real one
(``models/networks.py``), just small.

The human generator is trained from scratch; anime, fox, pony and furry start from its weights and fine-tune the
synthesis network only. The mapping network stays the human one, so a w (from a seed or from /encode of a photo)
means the same individual in every model: that is what makes weight-averaged blends of the family meaningful.
The run also writes OUT/sample_face.jpg (render_photo(0)), the photo the README feeds to /encode.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.networks import Generator, GeneratorConfig
from models.procedural import DOMAINS, render_face, render_photo

BASE = "human"
ZOO_CONFIG = dict(z_dim=128, w_dim=128, mapping_layers=4, channel_base=2048, channel_max=128, img_resolution=64,
                  architecture="skip")
EVAL_SEEDS = range(1000, 1064)
W_AVG_SAMPLES = 10_000


def targets_for(z: np.ndarray, domain: str, size: int) -> torch.Tensor:
    """Procedural renders for a batch of latents, as float [-1, 1] NCHW like the generator's output."""
    imgs = np.stack([render_face(row, domain, size) for row in z])
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def distill_loss(img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss = (img - target).abs().mean()
    for factor in (2, 4):
        loss = loss + (F.avg_pool2d(img, factor) - F.avg_pool2d(target, factor)).abs().mean()
    return loss


@torch.no_grad()
def eval_l1(G: Generator, domain: str) -> float:
    """Mean |G(z) - render(z)| in [-1, 1] units over fixed held-out seeds (the numbers recorded in metadata)."""
    z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in EVAL_SEEDS])
    was_training = G.training
    G.eval()
    img = G(torch.from_numpy(z).float(), noise_mode="const")
    G.train(was_training)
    return float((img - targets_for(z, domain, G.img_resolution)).abs().mean())


@torch.no_grad()
def recompute_w_avg(G: Generator, samples: int = W_AVG_SAMPLES, seed: int = 123) -> None:
    z = torch.from_numpy(np.random.RandomState(seed).randn(samples, G.z_dim)).float()
    G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))


def train_domain(G: Generator, domain: str, minutes: float, *, lr: float, batch: int, seed: int,
                 train_mapping: bool, log_every: int = 50) -> dict:
    """Distil ``domain`` into G for a wall-clock budget; returns the training record kept in the file's metadata."""
    G.train()
    G.mapping.requires_grad_(train_mapping)
    if not train_mapping:
        G.mapping.eval()  # also freezes w_avg, which tracks the batch mean in training mode
    groups = [{"params": list(G.synthesis.parameters()), "lr": lr}]
    if train_mapping:
        # The stored mapping weights are scaled by mapping_lr_multiplier (0.01) at run time, the ADA-PT convention
        # kept so these files fine-tune like any StyleGAN2. Distillation needs the mapping to learn as fast as the
        # synthesis, so its Adam step is raised by the inverse factor: the same effective learning rate.
        groups.append({"params": list(G.mapping.parameters()), "lr": lr / G.config.mapping_lr_multiplier})
    opt = torch.optim.Adam(groups, betas=(0.9, 0.99))
    base_lrs = [g["lr"] for g in groups]
    rng = np.random.RandomState(seed)
    start = time.monotonic()
    deadline = start + minutes * 60.0
    iterations, recent = 0, []
    while time.monotonic() < deadline:
        # Cosine decay over the wall-clock budget, to a tenth: the last minutes sharpen details.
        progress = min((time.monotonic() - start) / (deadline - start), 1.0)
        for group, base_lr in zip(opt.param_groups, base_lrs):
            group["lr"] = base_lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))
        z = rng.randn(batch, G.z_dim)
        target = targets_for(z, domain, G.img_resolution)
        img = G(torch.from_numpy(z).float(), noise_mode="const")
        loss = distill_loss(img, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        iterations += 1
        recent = (recent + [loss.item()])[-50:]
        if iterations % log_every == 0:
            print(f"[{domain}] it {iterations:5d}  {time.monotonic() - start:6.0f}s  loss {np.mean(recent):.4f}",
                  flush=True)
    G.eval()
    return {"domain": domain, "iterations": iterations, "batch": batch, "images_seen": iterations * batch,
            "seconds": round(time.monotonic() - start, 1), "lr": lr, "seed": seed,
            "train_mapping": train_mapping, "final_train_loss": round(float(np.mean(recent)), 4) if recent else None,
            "eval_l1": round(eval_l1(G, domain), 4)}


def save(G: Generator, out: Path, domain: str, record: dict, command: str, earlier: list | None = None) -> Path:
    from models.weights import save_generator

    path = out / f"{domain}.safetensors"
    lineage = {"name": domain, "fine_tuned_from": None if domain == BASE else BASE, "ancestor": BASE}
    source = {"made_by": "models/zoo_train.py", "command": command,
              "method": "distilled from models/procedural.py: L1(G(z, psi=1, noise_mode='const'), render_face(z)) "
                        "at 64/32/16 px, Adam",
              "training": record, "torch": torch.__version__}
    if earlier:
        source["earlier_runs"] = earlier
    save_generator(G, path, lineage, source)
    return path


def write_sample_photo(out: Path, seed: int = 0) -> Path:
    """The README's /encode demo photo: a procedural human under photo-like light and noise (not a G output)."""
    from PIL import Image

    path = out / "sample_face.jpg"
    Image.fromarray(render_photo(seed, 256)).save(path, quality=90)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.zoo_train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("models/zoo"), help="folder for <domain>.safetensors")
    p.add_argument("--human-minutes", type=float, default=18.0, help="wall-clock budget for the human base")
    p.add_argument("--finetune-minutes", type=float, default=5.0, help="wall-clock budget per fine-tuned domain")
    p.add_argument("--domains", default=",".join(DOMAINS),
                   help="comma list; without 'human' the base is loaded from OUT/human.safetensors")
    p.add_argument("--resume", action="store_true",
                   help="fine-tunes continue from OUT/<domain>.safetensors when it exists (earlier runs kept in metadata)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--finetune-lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    # One thread by default: on a shared machine, extra OpenMP threads spin-wait for a core and slow steps ~10x.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    unknown = sorted(set(domains) - set(DOMAINS))
    if unknown:
        p.error(f"unknown domain(s) {unknown}; choose from {', '.join(DOMAINS)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_sample_photo(args.out)
    command = "python -m models.zoo_train " + " ".join(argv if argv is not None else sys.argv[1:])

    if BASE in domains:
        base = Generator(GeneratorConfig(**ZOO_CONFIG))
        record = train_domain(base, BASE, args.human_minutes, lr=args.lr, batch=args.batch, seed=args.seed,
                              train_mapping=True)
        recompute_w_avg(base)
        print(json.dumps(record), flush=True)
        save(base, args.out, BASE, record, command)
    else:
        from models.weights import load_generator

        base = load_generator(args.out / f"{BASE}.safetensors")
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    for i, domain in enumerate(d for d in DOMAINS if d in domains and d != BASE):
        G = Generator(base.config)
        G.load_state_dict(base_state)
        earlier = []
        if args.resume and (args.out / f"{domain}.safetensors").is_file():
            from models.weights import load_generator, read_metadata

            # Train on from the last run's fine-tune; its mapping is the frozen human one, so lineage is unchanged.
            previous = args.out / f"{domain}.safetensors"
            G.load_state_dict(load_generator(previous).state_dict())
            old = read_metadata(previous)["source"]
            earlier = old.get("earlier_runs", []) + [{"command": old.get("command"), "training": old.get("training")}]
        record = train_domain(G, domain, args.finetune_minutes, lr=args.finetune_lr, batch=args.batch,
                              seed=args.seed + 1 + DOMAINS.index(domain), train_mapping=False)
        record["base_eval_l1"] = round(eval_l1(base, domain), 4)
        print(json.dumps(record), flush=True)
        save(G, args.out, domain, record, command, earlier)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
