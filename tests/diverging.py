"""Runs that diverge (issue 38 case 2), shared by the tests of every training path.

``NAN_RUN``: BP with AdamW at lr 10 and weight decay 10 gives a NaN loss in its first epoch on the digits (every
seed tried); a 4-unit layer and one epoch keep it under a second. Every path must end it ``failed`` with
``NAN_REASON``, the one sentence of the training driver. ``with_a_nan_pixel``: any algorithm's first epoch
gives a NaN loss on that data.
"""

from __future__ import annotations

import dataclasses

from fgff_core.data import Dataset

NAN_RUN = dict(algo="bp", dataset="digits", layers=(4,), epochs=1, eval_every=0, optimizer="adamw", lr=10.0,
               weight_decay=10.0, device="cpu")
NAN_ARGV = ("--algo", "bp", "--dataset", "digits", "--layers", "4", "--epochs", "1", "--eval-every", "0",
            "--optimizer", "adamw", "--lr", "10", "--weight-decay", "10", "--device", "cpu")
NAN_REASON = ("NaN loss at epoch 1. Hint: lower lr (now 10.0) or weight_decay (now 10.0), or use another optimizer "
              "(now adamw).")


def with_a_nan_pixel(data: Dataset) -> Dataset:
    """``data`` with one NaN training pixel, so that the first epoch's loss is NaN (a copy: the cached tensors
    that later tests share stay as they are)."""
    x_train = data.x_train.clone()
    x_train[0, 20] = float("nan")
    return dataclasses.replace(data, x_train=x_train)
