"""`dnebot train`: StyleGAN2 transfer learning from one of our models onto a folder of images.

What a run does, in the terms of Karras et al. (StyleGAN2, ADA): the generator starts from the base model, the
discriminator (a StyleGAN2 residual D with minibatch std-dev) starts fresh — released models ship without theirs —
and both train with the non-saturating logistic loss, R1 on reals applied lazily (every 16 D steps), style mixing,
an EMA copy of G for the samples and snapshots, and ADA-style augmentation whose strength adapts to how much D
overfits. Path-length regularisation is left out: it costs a second G pass and matters little when fine-tuning.

It writes the run-directory layout of stylegan2-ada-pytorch, so `dnebot watch` and other tools read it:
training_options.json, log.txt, stats.jsonl, reals.png, fakes_init.png, fakes<kimg:06d>.png, and
network-snapshot-<kimg:06d>.safetensors (our format, with lineage metadata), plus training-state.pt for --resume.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from models.augment import AdaptiveP, AugmentPipe
from models.discriminator import Discriminator
from models.render import to_uint8
from models.training_data import CROPS, DatasetError, ImageFolderDataset, scan_folder
from models.weights import load_generator, read_metadata, save_generator

log = logging.getLogger("dnebot.train")

R1_INTERVAL = 16            # lazy regularisation (StyleGAN2 §3.1)
STYLE_MIXING_PROB = 0.9
EMA_RAMPUP = 0.05
STATE_NAME = "training-state.pt"
OPTIONS_NAME = "training_options.json"


@dataclass
class TrainOptions:
    base: str | None = None
    data: str | None = None
    out: str | None = None
    name: str | None = None             # the new model's name in its lineage (default: the run folder's name)
    crop: str = "top"
    kimg: float = 100.0                 # total length, counted across resumes
    batch: int = 16
    lr: float = 0.002
    gamma: float | None = None          # R1 weight; None: ADA-PT's heuristic 0.0002·res²/batch
    aug: str = "ada"                    # ada | fixed | off
    aug_p: float = 0.0                  # start (ada) or constant (fixed) probability
    aug_target: float = 0.6
    aug_speed_kimg: float = 100.0       # ADA uses 500; short fine-tunes need p to move faster
    freeze_mapping: bool = False        # keep the base's mapping: a w then means the same face in both models
    tick_kimg: float = 1.0
    snap_kimg: float = 10.0
    grid: str = "auto"
    seed: int = 0
    device: str = "auto"
    threads: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class TrainingError(Exception):
    """A problem with the run's inputs; the message says what to change."""


def resolve_base(base: str) -> tuple[Path, dict]:
    """A model file path, or a name from the model registry → (path, lineage of that model)."""
    path = Path(base)
    if not path.is_file():
        try:
            from tasks.registry import RegistryError, current_registry
            from tasks.specs import InputError
            path = current_registry().get(base).path
        except (ImportError, RegistryError, InputError) as error:
            raise TrainingError(f"--base {base!r} is neither a model file nor a known model ({error})") from None
    try:
        lineage = read_metadata(path).get("lineage") or {}
    except (ValueError, OSError) as error:
        raise TrainingError(f"--base {path}: {error}") from None
    name = lineage.get("name") or path.stem
    return path, {"name": name, "ancestor": lineage.get("ancestor") or name}


def grid_shape(spec: str, resolution: int, on_gpu: bool) -> tuple[int, int]:
    """COLSxROWS, or 'auto': ADA-PT's layout (about 7680×4320 px), capped at 16×8 cells on a CPU."""
    if spec != "auto":
        try:
            cols, rows = (int(v) for v in spec.lower().split("x"))
        except ValueError:
            raise TrainingError(f"--grid {spec!r}: write it as COLSxROWS, e.g. 8x4, or auto") from None
        return cols, rows
    cols = int(np.clip(7680 // resolution, 7, 32))
    rows = int(np.clip(4320 // resolution, 4, 32))
    return (cols, rows) if on_gpu else (min(cols, 16), min(rows, 8))


def save_grid(images: torch.Tensor, cols: int, rows: int, path: Path) -> None:
    """Writes under a temporary name first, so a watcher never sees half a grid."""
    from PIL import Image
    pixels = to_uint8(images)
    n, h, w, c = pixels.shape
    canvas = np.zeros((rows * h, cols * w, c), np.uint8)
    for index in range(min(n, cols * rows)):
        y, x = divmod(index, cols)
        canvas[y * h:(y + 1) * h, x * w:(x + 1) * w] = pixels[index]
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(canvas).save(tmp, format="PNG")
    os.replace(tmp, path)


def format_time(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s"


class StatsWindow:
    """Per-tick means of the losses, written ADA-PT style: each name → {num, mean, std}."""

    def __init__(self):
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(float(value))

    def report(self) -> dict:
        out = {}
        for name, values in self.values.items():
            array = np.asarray(values)
            out[name] = {"num": len(values), "mean": float(array.mean()), "std": float(array.std())}
        self.values.clear()
        return out


class TrainingRun:
    def __init__(self, options: TrainOptions, out: Path, resume: bool):
        self.options, self.out = options, out
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if options.device == "auto"
                                   else options.device)
        self.base_path, self.base_lineage = resolve_base(options.base)
        self.name = (options.name or out.resolve().name).lower()
        G = load_generator(self.base_path, self.device)
        self.config = G.config
        self.resolution = G.img_resolution
        report = scan_folder(Path(options.data), self.resolution)
        for line in report.lines():
            self.log(line)
        self.data = ImageFolderDataset(report, options.crop, seed=options.seed)

        self.G = G.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(G).eval()
        self.D = Discriminator.for_generator(self.config).to(self.device).train().requires_grad_(False)
        g_params = [p for name, p in self.G.named_parameters()
                    if not (options.freeze_mapping and name.startswith("mapping."))]
        self.g_params = g_params
        self.G_opt = torch.optim.Adam(g_params, lr=options.lr, betas=(0.0, 0.99), eps=1e-8)
        # Lazy R1: the D optimiser's lr and betas are rescaled so the update per kimg matches eager R1.
        ratio = R1_INTERVAL / (R1_INTERVAL + 1)
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=options.lr * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)
        self.gamma = options.gamma if options.gamma is not None else 0.0002 * self.resolution ** 2 / options.batch
        self.augment = AugmentPipe(p=options.aug_p if options.aug != "off" else 0.0)
        self.ada = AdaptiveP(self.augment, options.aug_target, speed_kimg=options.aug_speed_kimg) \
            if options.aug == "ada" else None

        self.rng = torch.Generator().manual_seed(options.seed)
        self.grid = grid_shape(options.grid, self.resolution, self.device.type == "cuda")
        grid_rng = torch.Generator().manual_seed(options.seed + 1)
        self.grid_z = torch.randn([self.grid[0] * self.grid[1], self.G.z_dim], generator=grid_rng).to(self.device)
        self.cur_nimg, self.tick, self.total_sec, self.step_index = 0, 0, 0.0, 0
        self.stats = StatsWindow()
        if resume:
            self._load_state()
        self.log(f"base {self.base_path} ({self.base_lineage['name']}, ancestor {self.base_lineage['ancestor']}), "
                 f"{self.resolution} px; discriminator initialised fresh (base models carry no D); "
                 f"batch {options.batch}, R1 gamma {self.gamma:.4g}, augment {options.aug} p={self.augment.p:.3f}, "
                 f"crop {options.crop}, device {self.device}")

    # -- bookkeeping --------------------------------------------------------------------------------
    def log(self, line: str) -> None:
        print(line, flush=True)
        with open(self.out / "log.txt", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def lineage(self) -> dict:
        return {"name": self.name, "fine_tuned_from": self.base_lineage["name"],
                "ancestor": self.base_lineage["ancestor"]}

    def _state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "D": self.D.state_dict(),
                "G_opt": self.G_opt.state_dict(), "D_opt": self.D_opt.state_dict(),
                "cur_nimg": self.cur_nimg, "tick": self.tick, "total_sec": self.total_sec,
                "step_index": self.step_index, "aug_p": self.augment.p, "rng": self.rng.get_state()}

    def _save_state(self) -> None:
        tmp = self.out / (STATE_NAME + ".tmp")
        torch.save(self._state_dict(), tmp)
        os.replace(tmp, self.out / STATE_NAME)

    def _load_state(self) -> None:
        path = self.out / STATE_NAME
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        self.cur_nimg, self.tick = int(state["cur_nimg"]), int(state["tick"])
        self.total_sec, self.step_index = float(state["total_sec"]), int(state["step_index"])
        self.augment.p = float(state["aug_p"])
        self.rng.set_state(state["rng"])
        self.log(f"resumed from {path} at kimg {self.cur_nimg / 1000:.3f}")

    # -- the losses ---------------------------------------------------------------------------------
    def _generate(self, n: int) -> torch.Tensor:
        z = torch.randn([n, self.G.z_dim], generator=self.rng).to(self.device)
        ws = self.G.mapping(z)
        if torch.rand([], generator=self.rng).item() < STYLE_MIXING_PROB:
            # Style mixing: a second latent takes over from a random layer, so styles stay disentangled.
            cutoff = int(torch.randint(1, ws.shape[1], [], generator=self.rng))
            z2 = torch.randn([n, self.G.z_dim], generator=self.rng).to(self.device)
            ws = torch.cat([ws[:, :cutoff], self.G.mapping(z2)[:, cutoff:]], dim=1)
        return self.G.synthesis(ws, noise_mode="random")

    def _reals(self) -> torch.Tensor:
        return self.data.sample(self.options.batch, self.rng).to(self.device)

    def step(self) -> None:
        batch = self.options.batch
        # G: non-saturating logistic loss, softplus(-D(G(z))).
        for p in self.g_params:
            p.requires_grad_(True)
        fake_logits = self.D(self.augment(self._generate(batch)))
        loss_G = F.softplus(-fake_logits).mean()
        self.G_opt.zero_grad(set_to_none=True)
        loss_G.backward()
        self.G_opt.step()
        for p in self.g_params:
            p.requires_grad_(False)

        # D: softplus(D(G(z))) + softplus(-D(x)).
        self.D.requires_grad_(True)
        with torch.no_grad():
            fakes = self._generate(batch)
        fake_logits = self.D(self.augment(fakes))
        real_logits = self.D(self.augment(self._reals()))
        loss_D = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        self.D_opt.zero_grad(set_to_none=True)
        loss_D.backward()
        self.D_opt.step()
        if self.ada:
            self.ada.observe(real_logits)

        if self.step_index % R1_INTERVAL == 0:
            reals = self._reals().requires_grad_(True)
            logits = self.D(self.augment(reals))
            (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
            penalty = grad.square().sum(dim=[1, 2, 3])
            loss_r1 = (penalty * (self.gamma / 2)).mean() * R1_INTERVAL
            self.D_opt.zero_grad(set_to_none=True)
            loss_r1.backward()
            self.D_opt.step()
            self.stats.add("Loss/r1_penalty", penalty.mean().item())
        self.D.requires_grad_(False)

        self.cur_nimg += batch
        self.step_index += 1
        self._update_ema()
        self.stats.add("Loss/G/loss", loss_G.item())
        self.stats.add("Loss/D/loss", loss_D.item())
        self.stats.add("Loss/scores/fake", fake_logits.mean().item())
        self.stats.add("Loss/scores/real", real_logits.mean().item())
        self.stats.add("Loss/signs/real", real_logits.sign().mean().item())

    @torch.no_grad()
    def _update_ema(self) -> None:
        batch = self.options.batch
        ema_nimg = batch * 10 / 32 * 1000
        ema_nimg = min(ema_nimg, self.cur_nimg * EMA_RAMPUP)
        beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- outputs ------------------------------------------------------------------------------------
    @torch.no_grad()
    def write_fakes(self, name: str) -> None:
        images = torch.cat([self.G_ema(z, noise_mode="const") for z in self.grid_z.split(32)])
        save_grid(images, *self.grid, self.out / name)

    def write_reals(self) -> None:
        count = self.grid[0] * self.grid[1]
        save_grid(self.data.batch([i % len(self.data) for i in range(count)]), *self.grid, self.out / "reals.png")

    def write_snapshot(self) -> Path:
        kimg = self.cur_nimg // 1000
        path = self.out / f"network-snapshot-{kimg:06d}.safetensors"
        source = {"tool": "dnebot train", "base": str(self.base_path), "data": str(self.options.data),
                  "crop": self.options.crop, "kimg": self.cur_nimg / 1000, "augment_p": round(self.augment.p, 4),
                  "freeze_mapping": self.options.freeze_mapping}
        save_generator(self.G_ema, path, self.lineage(), source)
        self._save_state()
        return path

    def _tick_report(self, tick_start_nimg: int, tick_sec: float) -> None:
        kimg = self.cur_nimg / 1000
        done_kimg = (self.cur_nimg - tick_start_nimg) / 1000
        sec_per_kimg = tick_sec / max(done_kimg, 1e-9)
        images_per_sec = (self.cur_nimg - tick_start_nimg) / max(tick_sec, 1e-9)
        losses = self.stats.report()
        record = {**losses,
                  "Progress/tick": {"num": 1, "mean": self.tick, "std": 0.0},
                  "Progress/kimg": {"num": 1, "mean": kimg, "std": 0.0},
                  "Progress/augment": {"num": 1, "mean": self.augment.p, "std": 0.0},
                  "Timing/total_sec": {"num": 1, "mean": self.total_sec, "std": 0.0},
                  "Timing/sec_per_tick": {"num": 1, "mean": tick_sec, "std": 0.0},
                  "Timing/sec_per_kimg": {"num": 1, "mean": sec_per_kimg, "std": 0.0},
                  "Timing/images_per_sec": {"num": 1, "mean": images_per_sec, "std": 0.0},
                  "timestamp": time.time()}
        with open(self.out / "stats.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        mean = lambda name: losses.get(name, {}).get("mean", float("nan"))  # noqa: E731
        self.log(f"tick {self.tick:<5d} kimg {kimg:<8.3f} time {format_time(self.total_sec):<9s} "
                 f"sec/tick {tick_sec:<7.1f} sec/kimg {sec_per_kimg:<8.2f} img/s {images_per_sec:<6.2f} "
                 f"augment {self.augment.p:.3f} loss/G {mean('Loss/G/loss'):.3f} loss/D {mean('Loss/D/loss'):.3f}")

    def run(self) -> None:
        options = self.options
        total_nimg = int(options.kimg * 1000)
        if self.cur_nimg == 0:
            self.write_reals()
            self.write_fakes("fakes_init.png")
            self.log(f"wrote reals.png and fakes_init.png ({self.grid[0]}×{self.grid[1]} grid)")
        tick_start_nimg, tick_start = self.cur_nimg, time.time()
        next_snap_nimg = (self.cur_nimg // int(options.snap_kimg * 1000) + 1) * int(options.snap_kimg * 1000)
        while self.cur_nimg < total_nimg:
            self.step()
            done = self.cur_nimg >= total_nimg
            if done or self.cur_nimg - tick_start_nimg >= options.tick_kimg * 1000:
                tick_sec = time.time() - tick_start
                self.total_sec += tick_sec
                self.tick += 1
                self._tick_report(tick_start_nimg, tick_sec)
                if done or self.cur_nimg >= next_snap_nimg:
                    # ADA-PT names grids and snapshots by whole kimg.
                    self.write_fakes(f"fakes{self.cur_nimg // 1000:06d}.png")
                    path = self.write_snapshot()
                    self.log(f"wrote fakes{self.cur_nimg // 1000:06d}.png and {path.name}")
                    while next_snap_nimg <= self.cur_nimg:
                        next_snap_nimg += int(options.snap_kimg * 1000)
                tick_start_nimg, tick_start = self.cur_nimg, time.time()
        self.log(f"done: {self.cur_nimg / 1000:.3f} kimg in {format_time(self.total_sec)}")


# -- command line ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from bot.watch import add_destination_args
    parser = argparse.ArgumentParser(prog="dnebot train", description=__doc__.split("\n")[0])
    parser.add_argument("--base", help="model to start from: a name from models.toml or a .safetensors file")
    parser.add_argument("--data", help="folder of training images (png/jpg/webp; non-square ones are cropped)")
    parser.add_argument("--out", required=True, help="run directory to write (created)")
    parser.add_argument("--name", help="the new model's name in its lineage (default: the --out folder's name)")
    parser.add_argument("--crop", choices=CROPS, help="square crop of non-square images (default top)")
    parser.add_argument("--kimg", type=float, help="total training length in thousands of images (default 100)")
    parser.add_argument("--batch", type=int, help="images per step (default 16)")
    parser.add_argument("--lr", type=float, help="Adam learning rate for G and D (default 0.002)")
    parser.add_argument("--gamma", type=float, help="R1 weight (default 0.0002·resolution²/batch)")
    parser.add_argument("--aug", choices=("ada", "fixed", "off"), help="augmentation: adaptive (default), fixed p, off")
    parser.add_argument("--aug-p", type=float, help="augmentation probability to start from (ada) or keep (fixed)")
    parser.add_argument("--aug-target", type=float, help="ADA target for E[sign D(real)] (default 0.6)")
    parser.add_argument("--freeze-mapping", action="store_true", default=None,
                        help="keep the base's mapping network (a seed then draws the same face in both models)")
    parser.add_argument("--tick-kimg", type=float, help="kimg between status lines (default 1)")
    parser.add_argument("--snap-kimg", type=float, help="kimg between sample grids and snapshots (default 10, ≥ 1)")
    parser.add_argument("--grid", help="sample grid COLSxROWS (default auto: ADA-PT's layout, ≤16×8 on a CPU)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its latest snapshot")
    add_destination_args(parser, required=False)
    return parser


def merged_options(args, out: Path) -> TrainOptions:
    """Options saved by the run being resumed, overridden by what this command line says."""
    given = {k: v for k, v in vars(args).items() if v is not None and k in {f.name for f in fields(TrainOptions)}}
    saved = {}
    if args.resume:
        if not (out / STATE_NAME).is_file():
            raise TrainingError(f"nothing to resume in {out}: it has no {STATE_NAME} yet (drop --resume to start)")
        saved = json.loads((out / OPTIONS_NAME).read_text())
    elif (out / STATE_NAME).is_file():
        raise TrainingError(f"{out} already holds a run: add --resume to continue it, or pick a new --out")
    options = TrainOptions.from_dict({**saved, **given, "out": str(out)})
    if not options.base or not options.data:
        raise TrainingError("--base MODEL and --data FOLDER are required to start a run")
    if options.snap_kimg < 1:
        raise TrainingError("--snap-kimg must be at least 1: grids and snapshots are named by whole kimg")
    if options.batch < 1 or options.kimg <= 0:
        raise TrainingError("--batch must be at least 1 and --kimg above 0")
    return options


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        options = merged_options(args, out)
    except (TrainingError, ValueError) as error:
        print(f"dnebot train: {error}", file=sys.stderr)
        return 2
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    created_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    (out / OPTIONS_NAME).write_text(json.dumps(asdict(options), indent=2))
    try:
        run = TrainingRun(options, out, resume=args.resume)
    except (TrainingError, DatasetError) as error:
        print(f"dnebot train: {error}", file=sys.stderr)
        if created_out:   # a run that never started leaves nothing behind to trip the next attempt's "already holds a run"
            shutil.rmtree(out)
        return 2
    poster = None
    if args.channel or args.webhook:
        from bot.watch import BackgroundWatch, Watcher, destination_from_args, setup_logging, upload_limit_from_args
        setup_logging()
        try:
            # Our grids are renamed into place when complete, so the watcher need not wait for them to settle.
            watcher = Watcher([out], destination_from_args(args), upload_limit_from_args(args), atomic_writes=True)
        except ValueError as error:
            print(f"dnebot train: {error}", file=sys.stderr)
            return 2
        poster = BackgroundWatch(watcher).start()
    try:
        run.run()
    except KeyboardInterrupt:
        run.log(f"interrupted at kimg {run.cur_nimg / 1000:.3f}; the latest snapshot can be resumed with --resume")
        return 130
    finally:
        if poster:
            poster.finish()
    if poster and poster.error:
        print(f"dnebot train: grids were not posted: {poster.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
