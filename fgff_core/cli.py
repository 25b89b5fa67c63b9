"""Command line: ``python -m fgff_core train|presets|datasets|reproduce|ablate ...``.

The ``train`` flags are generated from ``RunConfig``'s fields, so the CLI and the config schema
cannot drift apart: ``--train-subset`` is ``train_subset``, and so on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._files import read_config_file
from .analysis.ablation_settings import FLAG_HELP as ABLATION_FLAGS
from .analysis.ablation_settings import add_ablation_flags
from .config.presets import PRESETS
from .config.schema import RunConfig, config_fields, field_choices, parse_field
from .config.values import MAX_PATH_CHARS, short_repr
from .data.loading import DATASETS, DatasetNotFoundError, data_root, load_for_config, train_subset_note
from .engine.events import EpochMetrics, EvalMetrics, RunFinished, RunStarted
from .engine.memory import check_memory
from .engine.runtime import retain_freed_memory
from .format import duration, percent
from .jobs.executors import EXECUTOR_ENV, EXECUTORS, check_executor
from .jobs.manager import JobError
from .jobs.ray_cluster import RayUnavailableError
from .reproduce.paper import PARTS
from .reproduce.pruning import add_pruning_flags
from .store import StoreError
from .vocabulary import RunStatus, algo_label, trains_factors


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (not the whole usage block), exit code 2.

    What the user typed is echoed through ``short_repr`` (a 100 kB value is cut, not printed whole):
    argparse's own messages for a bad choice, unrecognized arguments and an ambiguous abbreviation
    are rebuilt here with it."""

    def error(self, message: str) -> NoReturn:
        ambiguous = re.fullmatch(r"ambiguous option: (.*) could match (.*)", message, re.S)
        if ambiguous:
            message = f"ambiguous option: {short_repr(ambiguous[1])} could match {ambiguous[2]}"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {short_repr(' '.join(extra))}")
        return parsed

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, f"invalid choice: {short_repr(value)} "
                                                 f"(choose from {', '.join(map(repr, action.choices))})")


def _path(text: str) -> Path:
    """An argparse ``type`` for a file or folder path: at most ``MAX_PATH_CHARS`` characters, no NUL."""
    if len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise argparse.ArgumentTypeError(f"expected a path of at most {MAX_PATH_CHARS} characters (no NUL byte), "
                                         f"got {short_repr(text)}")
    return Path(text)


_METAVARS = {"int": "N", "float": "X", "int_list": "N,N,...", "path": "DIR"}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``RunConfig`` field. Values stay text here: ``RunConfig`` parses them (see
    ``config.parse_field``), so the CLI, the form, URLs and JSON files accept the same spellings."""
    group = parser.add_argument_group("run configuration (defaults: the preset, else the values shown)")
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        default = f.default
        shown = "algorithm default" if default is None else (",".join(map(str, default))
                                                              if isinstance(default, tuple) else default)
        help_text = f"{meta['help']} [default: {shown}]"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": f.name}
        if meta["kind"] == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            choices = field_choices(f.name)
            kwargs["metavar"] = "{" + ",".join(choices) + "}" if choices else _METAVARS[meta["kind"]]
        group.add_argument(flag, **kwargs)


def _glue_dash_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--layers -5,10`` as ``--layers=-5,10``: argparse takes a value starting with '-' for a flag
    and says "expected one argument"; RunConfig then names the field and its range instead."""
    parsers = [parser] + [p for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                          for p in action.choices.values()]
    takes_value = {a for p in parsers for action in p._actions if action.nargs is None and action.option_strings
                   for a in action.option_strings}
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if token in takes_value and nxt is not None and nxt.startswith("-") and not nxt.startswith("--") \
                and nxt not in ("-h",):
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _field_type(name: str) -> Callable[[str], Any]:
    """An argparse ``type`` that reads a flag as the config field ``name`` (same rules, same message)."""
    def parse(text: str) -> Any:
        try:
            return parse_field(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _seed_count(text: str) -> int:
    if not (text.strip().isascii() and text.strip().isdigit() and 1 <= int(text) <= 100):
        raise argparse.ArgumentTypeError(f"expected an integer in [1, 100], got {short_repr(text)}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m fgff_core",
        description="Train and inspect Forward-Forward (FF), Fine-Grained Forward-Forward (FGFF), Mono-Forward "
                    "(MF) and backprop (BP) networks.",
        epilog="Example: python -m fgff_core train --algo fgff --dataset digits --layers 100,100 --epochs 200 "
               "--seed 0 --json",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train one network and report its accuracy",
                           description="Train one network. Every config field is a flag; --preset and --config "
                                       "set a starting point that the other flags override.")
    train.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                       help="start from a named preset: " + ", ".join(PRESETS))
    train.add_argument("--config", type=_path, metavar="FILE", help="start from a JSON config file")
    train.add_argument("--json", action="store_true", help="print one final JSON line with the results")
    train.add_argument("--save", type=_path, metavar="PATH", help="save the trained model (safetensors)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_executor_flag(train)
    _add_config_flags(train)

    sub.add_parser("presets", help="list the named presets")
    sub.add_parser("datasets", help="list the datasets and where their files are looked for")

    reproduce = sub.add_parser("reproduce", help="reproduce the paper's tables (see docs/REPRODUCTION.md)",
                               epilog="Tables III and IV at the paper's budget (CIFAR-10 at 1200 epochs per layer) on "
                                      "a GPU, inside a time limit: python -m fgff_core.reproduce.gpu (--dry-run first)")
    reproduce.add_argument("--table", default="all", choices=[*PARTS, "all"],
                           help="a paper table (1-4), the fair-comparison study, the strong FF recipes (best), "
                                "FGFF's significance lr swept on the quick strong recipes (siglr), pruning orders "
                                "(pruning), Mono-Forward on MLPs beside BP and its paper (mf), or all of them "
                                "[default: all]")
    reproduce.add_argument("--budget", default="quick", choices=["quick", "full"])
    reproduce.add_argument("--seeds", type=_seed_count, default=3, metavar="N", help="seeds per cell, 1 to 100")
    reproduce.add_argument("--data-dir", type=_field_type("data_dir"), metavar="DIR")
    reproduce.add_argument("--out", type=_path, default=Path("docs/reproduction"), metavar="DIR")
    reproduce.add_argument("--device", type=_field_type("device"), default="auto")
    _add_executor_flag(reproduce)
    add_pruning_flags(reproduce)

    ablate = sub.add_parser("ablate", help="ablation and pruning curves of a stored run",
                            description="Test accuracy as neurons are removed from a stored FF/FGFF run, under "
                                        "several orders and kinds of removal (cached beside the run). --config "
                                        "sets a starting point (a JSON object) that the other flags override.")
    ablate.add_argument("run_id", metavar="RUN_ID")
    ablate.add_argument("--runs-dir", type=_path, metavar="DIR", help="the runs folder [default: $FGFF_RUNS_DIR, "
                                                                      "else ./runs]")
    ablate.add_argument("--data-dir", type=_field_type("data_dir"), metavar="DIR",
                        help="where the run's dataset is [default: the run's own]")
    ablate.add_argument("--config", type=_path, metavar="FILE", help="the ablation settings as a JSON object")
    ablate.add_argument("--json", action="store_true", help="print one JSON object with every curve")
    add_ablation_flags(ablate)
    return parser


def _add_executor_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help="local: train in this process; ray: submit to a Ray cluster ($RAY_ADDRESS, else a local "
                             "Ray instance) through the job manager, stored in $FGFF_RUNS_DIR or ./runs "
                             f"[default: ${EXECUTOR_ENV}, else local]")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Preset, then config file, then flags: later ones win."""
    values: dict[str, Any] = {}
    if getattr(args, "preset", None):
        algo = getattr(args, "algo", None)  # absent: the preset's own algorithm
        values.update(PRESETS[args.preset].config(None if algo is None else parse_field("algo", algo)).to_dict())
    if getattr(args, "config", None):
        values.update(read_config_file(args.config))
    names = {f.name for f in config_fields()}
    values.update({k: v for k, v in vars(args).items() if k in names})
    return RunConfig.from_dict(values)


def _train(args: argparse.Namespace) -> int:
    from .engine.driver import Driver
    from .engine.training import Trainer

    config = config_from_args(args)
    if args.save:
        from .engine.checkpoint import check_save_target

        check_save_target(args.save)  # before training: a bad target must not cost a training run
    if args.executor != "local":
        return _train_on_executor(args, config)  # the job manager checks the memory where the run trains
    check_memory(config)  # before loading: a run this machine cannot hold is refused with its estimate
    data = load_for_config(config)
    note = train_subset_note(config, data)
    if note:
        print(f"warning: {note}", file=sys.stderr)
    trainer = Trainer(config, data)
    driver = Driver(trainer)
    bar = None
    show_bar = not args.quiet and sys.stderr.isatty()
    last_eval: EvalMetrics | None = None
    for event in driver:
        if isinstance(event, RunStarted) and show_bar:
            from tqdm import tqdm

            bar = tqdm(total=event.epoch_events, unit="epoch", file=sys.stderr,
                       desc=f"{algo_label(config.algo)} {config.dataset} {'x'.join(map(str, config.layers))}")
        elif isinstance(event, EpochMetrics) and bar is not None:
            bar.update(1)
            postfix = {"layer": event.layer + 1, "loss": f"{event.loss:.4f}"}
            if last_eval is not None:
                postfix["test_acc"] = percent(last_eval.test_acc)
            bar.set_postfix(postfix, refresh=False)
        elif isinstance(event, EvalMetrics):
            last_eval = event
    if bar is not None:
        bar.close()
    result: RunFinished = driver.result
    if args.save and result.status == RunStatus.DONE:
        from .engine.checkpoint import save_checkpoint

        save_checkpoint(args.save, trainer.model, config)
    summary = {"algo": config.algo, "dataset": config.dataset, "layers": list(config.layers),
               "device": str(trainer.device), **result.to_dict(), "config": config.to_dict()}
    summary.pop("event")
    return _report(args, summary)


def _train_on_executor(args: argparse.Namespace, config: RunConfig) -> int:
    """``train --executor ray``: one run through the job manager; the same summary as a local run."""
    from .jobs.batch import run_configs

    say = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    result = run_configs([config], args.executor, say=say)[0]
    if result.status != "done":
        print(f"error: the run {result.status}: {result.error or 'no reason recorded'} (run {result.run_id})",
              file=sys.stderr)
        return 1
    if args.save and result.checkpoint:
        from ._files import atomic_copy

        atomic_copy(result.checkpoint, args.save)
    summary = {"algo": config.algo, "dataset": config.dataset, "layers": list(config.layers),
               "device": result.device, "status": result.status, **result.final, "reason": result.error,
               "node": result.node, "run_id": result.run_id, "config": config.to_dict()}
    return _report(args, summary)


def _report(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    """Print a run's summary (one JSON line with ``--json``); a run that did not finish (a NaN loss: failed)
    also gets one line on stderr with its reason and exit code 1."""
    done = summary["status"] == RunStatus.DONE
    if args.json:
        print(json.dumps(summary))
    elif done:
        print(_human_summary(summary))
    if done:
        return 0
    run = f" (run {summary['run_id']})" if summary.get("run_id") else ""
    print(f"error: the run {summary['status']}: {summary.get('reason') or 'no reason recorded'}{run}",
          file=sys.stderr)
    return 1


def _human_summary(s: dict[str, Any]) -> str:
    lines = [f"{algo_label(s['algo'])} on {s['dataset']} ({'x'.join(map(str, s['layers']))}), device {s['device']}",
             f"  test accuracy:  {percent(s['test_acc'])}"]
    if trains_factors(s["algo"]):  # FF keeps s at 1: its accuracy without s would only repeat it
        lines.append(f"  test accuracy without significance: {percent(s['test_acc_no_significance'])}")
    lines += [f"  train accuracy: {percent(s['train_acc'])}",
              f"  training time:  {duration(s['train_seconds'])} ({duration(s['epoch_seconds_median'])} per "
              f"layer-epoch, median)"]
    if s.get("reason"):  # a run at chance: why (findings.chance_note)
        lines.append(f"  {s['reason']}")
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


def _ablate(args: argparse.Namespace) -> int:
    from .analysis.ablation_runs import ablate_run

    values = read_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in ABLATION_FLAGS and v is not None})
    return ablate_run(args.run_id, args.runs_dir, values, args.data_dir, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_glue_dash_values(list(sys.argv[1:] if argv is None else argv), parser))
    try:
        if args.command in ("train", "reproduce"):
            args.executor = check_executor(args.executor)  # the flag, else $FGFF_EXECUTOR: a bad value is refused
            retain_freed_memory()  # this process trains and exits: keep freed memory for reuse
        if args.command == "train":
            return _train(args)
        if args.command == "presets":
            return _presets()
        if args.command == "datasets":
            return _datasets()
        if args.command == "ablate":
            return _ablate(args)
        if args.command == "reproduce":
            from .reproduce import main as reproduce_main

            return reproduce_main(args)
    except DatasetNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RayUnavailableError, StoreError, JobError) as exc:  # a disk that filled up while training, a
        # Ray cluster that does not answer, a damaged runs.sqlite (--executor ray), ...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
        if isinstance(exc, RuntimeError) and "allocate" not in str(exc) and "out of memory" not in str(exc):
            raise
        print("error: out of memory: use fewer or smaller layers, a smaller batch_size or eval_chunk",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
