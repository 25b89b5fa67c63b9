"""Command line: ``python -m fgff_core train|presets|datasets ...``.

The ``train`` flags are generated from ``RunConfig``'s fields, so the CLI and the config schema
cannot drift apart: ``--train-subset`` is ``train_subset``, and so on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import RunConfig, config_fields, field_choices
from .data import DATASETS, DatasetNotFoundError, data_root
from .events import EpochMetrics, EvalMetrics, RunFinished, RunStarted
from .presets import PRESETS
from .runtime import retain_freed_memory


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run configuration (defaults: the preset, else the values shown)")
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        default = f.default
        shown = "algorithm default" if default is None else (",".join(map(str, default))
                                                              if isinstance(default, tuple) else default)
        help_text = f"{meta['help']} [default: {shown}]"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": f.name}
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            choices = field_choices(f.name) if f.name != "device" else None
            if choices:
                kwargs["choices"] = choices
            kwargs["type"] = {"int": int, "float": float}.get(f.type, str)
            kwargs["metavar"] = {"layers": "N,N,...", "data_dir": "DIR"}.get(f.name)
        group.add_argument(flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fgff_core",
        description="Train and inspect Forward-Forward (FF), Fine-Grained Forward-Forward (FGFF) and backprop "
                    "(BP) networks.",
        epilog="Example: python -m fgff_core train --algo fgff --dataset digits --layers 100,100 --epochs 200 "
               "--seed 0 --json",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train one network and report its accuracy",
                           description="Train one network. Every config field is a flag; --preset and --config "
                                       "set a starting point that the other flags override.")
    train.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                       help="start from a named preset: " + ", ".join(PRESETS))
    train.add_argument("--config", type=Path, metavar="FILE", help="start from a JSON config file")
    train.add_argument("--json", action="store_true", help="print one final JSON line with the results")
    train.add_argument("--save", type=Path, metavar="PATH", help="save the trained model (safetensors)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(train)

    sub.add_parser("presets", help="list the named presets")
    sub.add_parser("datasets", help="list the datasets and where their files are looked for")

    reproduce = sub.add_parser("reproduce", help="reproduce the paper's tables (see docs/REPRODUCTION.md)")
    reproduce.add_argument("--table", default="all", choices=["1", "2", "3", "4", "study", "all"],
                           help="a paper table, the fair-comparison study, or all of them [default: all]")
    reproduce.add_argument("--budget", default="quick", choices=["quick", "full"])
    reproduce.add_argument("--seeds", type=int, default=3)
    reproduce.add_argument("--data-dir", metavar="DIR")
    reproduce.add_argument("--out", type=Path, default=Path("docs/reproduction"), metavar="DIR")
    reproduce.add_argument("--device", default="auto")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Preset, then config file, then flags: later ones win."""
    values: dict[str, Any] = {}
    if getattr(args, "preset", None):
        algo = getattr(args, "algo", "fgff")
        values.update(PRESETS[args.preset].config(algo).to_dict())
    if getattr(args, "config", None):
        try:
            values.update(json.loads(args.config.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"config: cannot read {args.config}: {exc}") from None
    names = {f.name for f in config_fields()}
    values.update({k: v for k, v in vars(args).items() if k in names})
    return RunConfig.from_dict(values)


def _train(args: argparse.Namespace) -> int:
    from .training import Trainer

    config = config_from_args(args)
    trainer = Trainer(config)
    bar = None
    show_bar = not args.quiet and sys.stderr.isatty()
    last_eval: EvalMetrics | None = None
    for event in trainer.run():
        if isinstance(event, RunStarted) and show_bar:
            from tqdm import tqdm

            bar = tqdm(total=event.epoch_events, unit="epoch", file=sys.stderr,
                       desc=f"{config.algo.upper()} {config.dataset} {'x'.join(map(str, config.layers))}")
        elif isinstance(event, EpochMetrics) and bar is not None:
            bar.update(1)
            postfix = {"layer": event.layer + 1, "loss": f"{event.loss:.4f}"}
            if last_eval is not None:
                postfix["test_acc"] = f"{last_eval.test_acc:.3f}"
            bar.set_postfix(postfix, refresh=False)
        elif isinstance(event, EvalMetrics):
            last_eval = event
    if bar is not None:
        bar.close()
    result: RunFinished = trainer.result
    if args.save:
        from .checkpoint import save_checkpoint

        save_checkpoint(args.save, trainer.model, config)
    summary = {"algo": config.algo, "dataset": config.dataset, "layers": list(config.layers),
               "device": str(trainer.device), **result.to_dict(), "config": config.to_dict()}
    summary.pop("event")
    if args.json:
        print(json.dumps(summary))
    else:
        print(_human_summary(summary))
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _human_summary(s: dict[str, Any]) -> str:
    lines = [f"{s['algo'].upper()} on {s['dataset']} ({'x'.join(map(str, s['layers']))}), device {s['device']}",
             f"  test accuracy:  {_fmt(s['test_acc'])}"]
    if s["algo"] != "bp":
        lines.append(f"  test accuracy without significance: {_fmt(s['test_acc_no_significance'])}")
    lines += [f"  train accuracy: {_fmt(s['train_acc'])}",
              f"  training time:  {s['train_seconds']:.2f} s ({s['epoch_seconds_median'] * 1000:.2f} ms per "
              f"layer-epoch, median)"]
    return "\n".join(lines)


def _presets() -> int:
    for preset in PRESETS.values():
        cfg = preset.config("fgff")
        print(f"{preset.name:28s} {preset.title}\n{'':28s} {preset.description}\n{'':28s} "
              f"dataset={cfg.dataset} layers={','.join(map(str, cfg.layers))} epochs={cfg.epochs} "
              f"lr={cfg.lr} sig_lr={cfg.sig_lr}")
    return 0


def _datasets() -> int:
    root = data_root(None)
    print(f"data folder: {root or '(none set: pass --data-dir or set FGFF_DATA_DIR)'}")
    for spec in DATASETS.values():
        print(f"{spec.name:15s} {spec.title}. {spec.how_to_get}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("train", "reproduce"):
            retain_freed_memory()  # this process trains and exits: keep freed memory for reuse
        if args.command == "train":
            return _train(args)
        if args.command == "presets":
            return _presets()
        if args.command == "datasets":
            return _datasets()
        if args.command == "reproduce":
            from .reproduce import main as reproduce_main

            return reproduce_main(args)
    except DatasetNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
