"""Ablation curves of stored runs: computed once per (run, settings) and cached beside the run as JSON,
and the ``python -m fgff_core ablate RUN_ID`` command that prints them."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._files import atomic_write
from ..data.loading import Dataset, load_for_config
from .ablation import ablation_curves
from .ablation_result import AblationResult
from .ablation_settings import AblationSettings
from .embeddings import RunSource

CACHE_VERSION = 1  # bump when the computation changes, so stale caches are recomputed


def cache_name(settings: AblationSettings) -> str:
    """The cache file of these settings: ``ablation_<12 hex digits>.json``."""
    key = json.dumps({"version": CACHE_VERSION, **settings.to_dict()}, sort_keys=True)
    return f"ablation_{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


def cached_ablation(source: RunSource, run_id: str, settings: AblationSettings,
                    data_loader: Callable[[Any], Dataset] = load_for_config) -> AblationResult:
    """The run's curves for ``settings``: read from its cache file, or computed and stored there."""
    path = source.artifact_path(run_id, cache_name(settings))
    if path.exists():
        try:
            stored = json.loads(path.read_text())
            if stored.get("version") == CACHE_VERSION:
                result = AblationResult.from_dict(stored["result"])
                if result.settings == settings:
                    return result
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or outdated: recompute (and overwrite) rather than fail
    model, config = source.load_model(run_id)
    result = ablation_curves(model, data_loader(config), settings)
    atomic_write(path, json.dumps({"version": CACHE_VERSION, "result": result.to_dict()}))
    return result


def ablate_run(run_id: str, runs_dir: Path | None, values: Mapping[str, Any], data_dir: str | None = None,
               as_json: bool = False) -> int:
    """The CLI command: the run's curves for the settings in ``values`` (JSON config, then flags), printed
    as one JSON object (``as_json``) or as the summary sentences. ``data_dir`` overrides the run's."""
    from ..store import RunStore

    settings = AblationSettings.from_dict(values)
    store = RunStore(runs_dir, read_only=False)

    def loader(config: Any) -> Dataset:
        return load_for_config(config if data_dir is None else config.replace(data_dir=data_dir))

    if store.read_only:  # a folder we cannot write: compute, keep nothing
        model, config = store.load_model(run_id)
        result = ablation_curves(model, loader(config), settings)
    else:
        result = cached_ablation(store, run_id, settings, loader)
    if as_json:
        print(json.dumps({"run_id": run_id, **result.to_dict(), "summary": result.summary()}))
    else:
        print("\n".join(result.summary()), file=sys.stdout)
    return 0
