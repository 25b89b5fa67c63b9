"""One training, several rows: a run scored on every held-out set that a spec of the same training may ask for.

A study's sweep run (scored on a validation split) and its test run at the same config train the same
network on the same samples (``execution.validation_split`` trains on exactly ``load_dataset``'s training
subset); only what they score differs. So each trained run scores its own set and the other one (the test
set for a validation run, the validation split of ``RunSpec.also_val_size`` for a test run), and records its
*training key*: what it trained (``specs.run_identity``) and a hash of the training tensors themselves, so
that a validation run which trains on the rest of an unsubsetted training set never stands in for a run on
all of it. A later spec with that training key takes its row from the scores (``shared_row``), marked
``same_run_as``: its ``wall_seconds`` are the one training's, which no sum of compute time may count twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..config.schema import RunConfig
from ..data.loading import Dataset
from ..engine.evaluation import Accuracy
from ..engine.events import RunFinished
from ..engine.training import Trainer
from .runlog import RunLog
from .specs import RunSpec, run_identity


def scored_on(val_size: int) -> str:
    """The name of a held-out set in a row's ``scores``: ``"test"``, or ``"validation 10000"``."""
    return f"validation {val_size}" if val_size else "test"


def data_fingerprint(data: Dataset) -> str:
    """A hash of the training samples and labels a run trains on (in their order)."""
    digest = hashlib.sha1()
    for tensor in (data.x_train, data.y_train):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def training_key(spec: RunSpec, fingerprint: str) -> str:
    """Identifies what a run trains (its config and its training tensors), whatever it is scored on."""
    blob = json.dumps({"cfg": run_identity(spec.config), "data": fingerprint}, sort_keys=True, default=str)
    return "train|" + hashlib.sha1(blob.encode()).hexdigest()[:16]


def other_set(spec: RunSpec) -> int | None:
    """The second held-out set a trained run of ``spec`` scores (a validation size, 0 = the test set), so that a
    spec of the same training tested on it can take the row: the test set for a validation run, the
    validation split of ``also_val_size`` for a test run that names one; None for neither."""
    if spec.val_size:
        return 0
    return spec.also_val_size or None


def _score(accuracy: Accuracy, held_out: Dataset) -> dict[str, Any]:
    return {"test_acc": accuracy.with_significance, "test_acc_no_significance": accuracy.no_significance,
            "n_test": len(held_out.y_test)}


def scores(spec: RunSpec, own: Dataset, result: RunFinished, trainer: Trainer,
           held_out: Callable[[RunConfig, int], Dataset]) -> dict[str, dict[str, Any]]:
    """A trained run's ``scores``: on its own held-out set (``result``'s) and on ``other_set``'s, which
    ``held_out(config, val_size)`` loads (a validation split, or the test set for 0)."""
    out = {scored_on(spec.val_size): _score(Accuracy(result.test_acc, result.test_acc_no_significance), own)}
    other = other_set(spec)
    if other is not None:
        data = held_out(spec.config, other)
        out[scored_on(other)] = _score(trainer.accuracy(data.x_test.to(trainer.device),
                                                        data.y_test.to(trainer.device)), data)
    return out


def network(row: Mapping[str, Any]) -> str:
    """Which trained network a logged row scored: its config's ``run_identity`` and its number of training samples.

    The same for rows of one training (``same_run_as``) and for the same network trained twice by runs logged
    before sharing existed (one config on the same samples: ``execution.validation_split`` trains on exactly
    ``load_dataset``'s subset). For counting networks only; sharing a row needs ``training``, which hashes the
    samples themselves.
    """
    identity = run_identity(RunConfig.from_dict(row["config"]))
    return json.dumps({"cfg": identity, "n_train": row["n_train"]}, sort_keys=True, default=str)


def find_shared(log: RunLog, key: str, spec: RunSpec) -> dict[str, Any] | None:
    """A logged row of the same training (``key``) that scored the set ``spec`` is tested on, if any."""
    wanted = scored_on(spec.val_size)
    for row in log.rows.values():
        if row.get("training") == key and wanted in row.get("scores", {}) and "same_run_as" not in row:
            return row
    return None


def shared_row(spec: RunSpec, budget: str, trained: dict[str, Any], finished_at: str) -> dict[str, Any]:
    """``spec``'s row from the row of the run that trained the same network, on the set ``spec`` is tested on."""
    scores = trained["scores"][scored_on(spec.val_size)]
    return {**trained, "key": spec.key, "part": spec.part, "row": spec.row, "algo": spec.algo, "seed": spec.seed,
            "budget": budget, "test_on": spec.test_on, **scores,
            "same_run_as": trained["key"], "finished_at": finished_at}
