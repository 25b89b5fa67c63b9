"""The data folders of the app: which ones a browser user may name, and loading a dataset for them.

The CLI and the library read any folder their user names (a server may limit them with ``$FGFF_DATA_ROOTS``,
``data.check_data_dir``). A browser user of the app is someone else: the app has no login and its data folder
is settable from the form, a URL (``?data_dir=``) and a stored run's config (an uploaded checkpoint's, too). So
the app serves only its configured data roots, also when ``$FGFF_DATA_ROOTS`` is not set (issue 38):

- a browser user may name only a folder inside ``served_data_roots()``: ``$FGFF_DATA_ROOTS`` when set, else
  the app's own data folders, ``$FGFF_DATA_DIR`` (when set) and ``data.DEFAULT_DATA_DIR``;
- a dataset is downloaded only into the server's own folder (no data folder given), never into one a
  browser user named;
- the messages name no server path: neither the roots, nor the folder typed, nor where files were looked for.

Pages call ``served_config`` (before a run is submitted) and ``load_served`` / ``load_served_for_config``
(to read a dataset in the app's process); this module has no Streamlit in it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..config.schema import RunConfig
from . import loading
from .loading import DATASETS, DEFAULT_DATA_DIR, Dataset, DatasetNotFoundError, allowed_data_roots, check_data_dir

log = logging.getLogger("fgff_core.app")

OUTSIDE_ROOTS = ("data_dir: that folder is outside the data folders this server allows; leave the data folder "
                 "empty to use the server's own, or name a folder inside it")
NAMED_DOWNLOAD = ("download: this server downloads datasets only into its own data folder, never into a folder "
                  "named in the settings; turn download off to read the folder you named, or leave the data folder "
                  "empty")


def served_data_roots() -> list[Path]:
    """The folders a browser user may name: ``$FGFF_DATA_ROOTS``, else the app's own data folders."""
    return allowed_data_roots() or [p for p in (loading.data_root(None), DEFAULT_DATA_DIR) if p is not None]


def check_served_data_dir(data_dir: str | Path | None) -> None:
    """``ValueError`` (``OUTSIDE_ROOTS``, naming no path) for a folder outside ``served_data_roots()``.

    None or empty (the server's own folder) is always allowed; ``..`` and symbolic links are resolved first.
    """
    try:
        check_data_dir(data_dir, served_data_roots())
    except ValueError:
        raise ValueError(OUTSIDE_ROOTS) from None


def served_config(config: RunConfig) -> RunConfig:
    """``config`` if the app may run it for a browser user, else ``ValueError`` naming the field and no path:
    its data folder must be inside the served roots, and a folder it names is read, never downloaded into."""
    check_served_data_dir(config.data_dir)
    if config.data_dir and config.download and not DATASETS[config.dataset].embedded:
        raise ValueError(NAMED_DOWNLOAD)
    return config


def load_served(name: str, data_dir: str | Path | None = None, **options: Any) -> Dataset:
    """``data.load_dataset`` for a browser user: the folder checked (``check_served_data_dir``), a download only
    into the server's own folder, and every failure a ``ValueError`` in a sentence naming no server path (the
    details go to the server's log). ``options``: ``train_subset``, ``train_subset_order``, ``normalize``."""
    check_served_data_dir(data_dir)
    spec = DATASETS.get(name)
    title = spec.title if spec is not None else repr(name)
    try:
        return loading.load_dataset(name, data_dir=data_dir or None, download=not data_dir, **options)
    except DatasetNotFoundError as exc:
        log.warning("dataset %s not found for a browser user: %s", name, exc)
        where = ("the data folder named in the settings (nothing is downloaded into it)" if data_dir
                 else "this server's data folder, and it could not be downloaded")
        how = spec.how_to_get if spec is not None else ""
        raise ValueError(f"{title} not found in {where}. How to provide it (whoever runs this server): {how}") \
            from None
    except (OSError, ValueError) as exc:
        log.warning("dataset %s cannot be read for a browser user: %s", name, exc)
        raise ValueError(f"{title} cannot be read from this server's data folder: its files are damaged, "
                         "incomplete or not readable; whoever runs this server finds the details in its log") \
            from None


def load_served_for_config(config: RunConfig) -> Dataset:
    """The dataset a stored run's ``config`` names, loaded under the app's rule (``load_served``)."""
    arguments = loading.dataset_arguments(config)
    arguments.pop("download")  # the rule decides: only into the server's own folder
    return load_served(**arguments)
