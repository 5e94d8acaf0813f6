"""prift: SFT-then-RL post-training toolkit.

`prift <command> [options]`: one subcommand per stage. Each command module registers itself in `COMMANDS` and is
imported lazily, so `prift --help` stays fast and a stage's heavy imports load only when it runs.
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

# command name -> (module path, one-line description). Each module exposes `main(argv: list[str]) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "sft": ("prift.commands.sft", "token-priority SFT (nll, dft, prift_prob, prift_mass, ...) with a reference-signal cache"),
    "cache": ("prift.commands.cache", "build the reference-signal cache of an SFT setup ahead of training (same "
                                      "options as sft)"),
    "rl": ("prift.commands.rl", "GRPO/DAPO on verifiable rewards: dynamic sampling, exact budget, vLLM or HF rollouts"),
    "eval": ("prift.commands.eval", "evaluate a checkpoint on math/code/medical benchmarks (avg@k, pass@k, maj@k)"),
    "export": ("prift.commands.export", "a prift eval run's code samples as evalplus / human-eval / lcb_runner input, "
                                        "to grade them with the official harness"),
    "report": ("prift.commands.report", "markdown/HTML table and PNG plot across prift eval runs"),
    "run": ("prift.commands.run", "a YAML recipe end to end: eval base, SFT variants, RL from each under one budget, "
                                  "eval, report; resumable"),
    "demo": ("prift.commands.demo", "the CPU demo recipe on the embedded SmolLM2-135M (prift run of "
                                    "recipes/demo/cpu_smollm2.yaml)"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"prift {__version__}: SFT-then-RL post-training toolkit", "", "usage: prift <command> [options]", ""]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "`prift <command> --help` documents every option of that command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"prift: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    code = int(module.main(rest) or 0)
    if code == 0:
        _close_process_group()
    return code


def _close_process_group() -> None:
    """A launched rank that finished: wait for the others, then shut the process group down. A rank that exits
    while a peer still holds its connections open can abort ("terminate called without an active exception") and
    fail an otherwise finished run. (A failed rank skips this: its peers may never reach the barrier.)"""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
