"""Caps a shared server sets on what may be submitted (checked at submit, before anything is queued)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from ..config.schema import RunConfig
from ..data.loading import DATA_ROOTS_ENV, check_data_dir
from ..data.registry import DATASETS
from ..engine.memory import check_memory
from ..engine.memory_budget import MemoryBudget, memory_cap, memory_limit


@dataclass(frozen=True)
class Limits:
    """Caps checked at submit (None: no cap). Set them on a shared server, e.g. from the environment.

    ``max_train_subset`` caps the training samples of datasets that are not embedded (digits is
    small and always allowed): such runs must set ``train_subset`` to at most this many.
    ``max_queued_per_owner`` counts an owner's (user's or session's) queued and running jobs.
    ``max_memory`` caps a run's estimated memory in bytes (``engine/memory.py``), below what the machine has:
    ``$FGFF_MEMORY_LIMIT`` (bytes, or with a unit: 8G), the one that is not named ``FGFF_LIMIT_...``, since the
    CLI honours it too.
    """

    max_units: int | None = None
    max_layers: int | None = None
    max_epochs: int | None = None
    max_queued_per_owner: int | None = None
    max_train_subset: int | None = None
    max_memory: int | None = None

    ENV_PREFIX = "FGFF_LIMIT_"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"limits.{f.name}: expected a positive integer or None, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Read ``FGFF_LIMIT_MAX_UNITS``, ``FGFF_LIMIT_MAX_LAYERS``, ... and ``FGFF_MEMORY_LIMIT`` (unset or
        empty: no cap)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int | None] = {"max_memory": memory_cap(environ)}
        for f in fields(cls):
            if f.name == "max_memory":
                continue
            raw = environ.get(cls.ENV_PREFIX + f.name.upper(), "").strip()
            if raw:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{cls.ENV_PREFIX}{f.name.upper()}: expected an integer, got {raw!r}") from None
        return cls(**values)

    def check(self, config: RunConfig, active_for_owner: int = 0) -> None:
        """Raise ValueError naming the field and the cap when ``config`` exceeds a limit.

        The data folder must be inside the server's ``$FGFF_DATA_ROOTS`` when that is set; the
        message does not name the server's folders.
        """
        try:
            check_data_dir(config.data_dir)
        except ValueError:
            raise ValueError(f"data_dir: {config.data_dir!r} is outside the data folders this server allows "
                             f"(${DATA_ROOTS_ENV}); leave it empty to use the server's data folder") from None
        if self.max_layers is not None and len(config.layers) > self.max_layers:
            raise ValueError(f"layers: {len(config.layers)} layers is over this server's limit of "
                             f"{self.max_layers} (max_layers)")
        if self.max_units is not None and max(config.layers) > self.max_units:
            raise ValueError(f"layers: {max(config.layers)} units in a layer is over this server's limit of "
                             f"{self.max_units} (max_units)")
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            raise ValueError(f"epochs: {config.epochs} is over this server's limit of {self.max_epochs} (max_epochs)")
        if self.max_train_subset is not None and not DATASETS[config.dataset].embedded:
            n = config.train_subset
            if n == 0 or n > self.max_train_subset:
                asked = "all training samples" if n == 0 else f"{n} training samples"
                raise ValueError(f"train_subset: {asked} of {config.dataset} is over this server's limit of "
                                 f"{self.max_train_subset} (max_train_subset); set train_subset to at most "
                                 f"{self.max_train_subset}")
        if self.max_queued_per_owner is not None and active_for_owner >= self.max_queued_per_owner:
            raise ValueError(f"owner: {active_for_owner} jobs already queued or running, this server allows "
                             f"{self.max_queued_per_owner} per user (max_queued_per_owner); wait or cancel one")

    def check_memory(self, config: RunConfig, local: bool = True) -> None:
        """Refuse a run whose estimated memory is over ``max_memory`` or, when it trains on this machine
        (``local``: not on a cluster), over what this machine's memory (its GPU's for CUDA) can give it now
        (``engine.memory.memory_limit``). ``MemoryLimitError``, a ValueError, gives the estimate and the limit."""
        budgets = [MemoryBudget(self.max_memory, "this server's limit, max_memory")] if self.max_memory else []
        if local:
            machine = memory_limit(config.device, environ={})  # the cap is max_memory's, read once at start
            budgets += [machine] if machine is not None else []
        if budgets:
            check_memory(config, min(budgets))
