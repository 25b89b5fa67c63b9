"""What the app's form calls each ``RunConfig`` field: a label a student can follow, with the technical
name (the JSON key and CLI flag) kept in the help text. No Streamlit here."""

from __future__ import annotations

FIELD_LABELS = {
    "algo": "Algorithm",
    "dataset": "Dataset",
    "layers": "Hidden layers (neurons per layer)",
    "epochs": "Epochs per layer",
    "batch_size": "Batch size (0 = full batch)",
    "optimizer": "Optimizer",
    "lr": "Learning rate (weights)",
    "sig_lr": "Learning rate (significance)",
    "threshold": "Goodness threshold",
    "loss": "Layer loss",
    "delta": "Hinge margin (delta)",
    "label_value": "Label value",
    "negatives": "Negative labels",
    "schedule": "Layer schedule",
    "seed": "Random seed",
    "device": "Device",
    "eval_every": "Evaluate every N epochs (0 = at the end)",
    "eval_subset": "Samples per evaluation",
    "eval_chunk": "Prediction chunk (0 = automatic)",
    "train_subset": "Training samples (0 = all)",
    "data_dir": "Data folder",
    "download": "Download missing data",
    "factorize": "Label-factorised first layer",
    "precision": "Matmul precision",
    "compile": "Compile the layer step",
    "log_every": "Copy metrics every N epochs",
    "train_subset_order": "Which training samples (subset order)",
    "normalize": "Input normalisation",
    "hard_negatives": "Hard negatives (fraction)",
    "hard_negatives_every": "Recompute hard negatives every N epochs",
    "lr_schedule": "Learning-rate schedule",
    "weight_decay": "Weight decay",
    "momentum": "SGD momentum",
    "peer_norm": "Peer normalisation (0 = off)",
    "symba_alpha": "SymBa scale (alpha)",
    "predict_layers": "Layers used for prediction",
    "readout_epochs": "Linear readout epochs (0 = off)",
    "significance_param": "Significance parameterisation",
    "augment_shift": "Random image shifts, pixels (0 = off)",
}


def field_label(name: str) -> str:
    """The form label of a config field (its name with spaces for a field added without one)."""
    return FIELD_LABELS.get(name, name.replace("_", " "))


def field_help(name: str, help_text: str) -> str:
    """The schema's help, followed by the field's technical name."""
    return f"{help_text} (`{name}` in the config, `--{name.replace('_', '-')}` on the command line)"
