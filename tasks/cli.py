"""The `dnebot` command: one entry point, one module per subcommand.

Each subcommand lives in the module that owns its work and exposes `main(argv) -> int` with its own
argparse parser. Modules are imported only when their subcommand runs, so `dnebot bot` never imports
torch (the bot image has none).
"""
import importlib
import sys

SUBCOMMANDS = {
    "local": ("tasks.local", "run a slash command locally, no Discord and no separate services: dnebot local \"/waifu seed:42\""),
    "worker": ("tasks.worker", "start a Celery worker for the GPU queues"),
    "bot": ("bot.app", "start the Discord bot (needs DISCORD_TOKEN)"),
    "generate": ("models.generate_cli", "render seeds from a model file, a drop-in for NVIDIA's generate.py"),
    "convert": ("models.convert_cli", "convert a model file to dnebot's safetensors format"),
    "inspect": ("models.inspect_cli", "describe a model file: format, architecture, lineage"),
    "watch": ("bot.watch", "post new sample grids of training runs to a Discord channel"),
    "train": ("models.train", "fine-tune a model on a folder of images"),
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: dnebot COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "Run `dnebot COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"dnebot: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
