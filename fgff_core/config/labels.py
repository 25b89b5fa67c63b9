"""What the app's form calls each ``RunConfig`` field: a label a student can follow, with the technical
name (the JSON key and CLI flag) kept in the help text; and what each algorithm is, in one paragraph
(``algorithm_note``: the Train and Compare pages read it here). No Streamlit here."""

from __future__ import annotations

from collections.abc import Iterable

from ..vocabulary import algo_label

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


# What each algorithm does, for people choosing one (``vocabulary.ALGORITHMS``); Markdown, one paragraph each.
ALGORITHM_NOTES = {
    "ff": "**FF (Forward-Forward)** trains layer by layer with no backward pass between layers. The label is written "
          "into the input; each layer's goodness (its mean squared activity) is pushed up for positive data (the "
          "true label) and down for negative data (a wrong one). It predicts by trying every label and taking the "
          "one with the highest goodness.",
    "fgff": "**FGFF (Fine-Grained FF)** is FF with one trainable significance factor per neuron weighing its share "
            "of the goodness, trained by its own optimizer; at a significance learning rate of 0 it is exactly FF.",
    "mf": "**MF (Mono-Forward**, Gong, Li and Abdulla, arXiv:2501.09238, by the FGFF authors) keeps FF's locality, "
          "each layer learning from its own loss with no gradient between layers, but drops FF's goodness: no "
          "label in the input and no negative data. Each layer gets a trainable projection from its neurons to one "
          "score per class, trained with the layer by cross-entropy against the true label, and the network "
          "predicts in one forward pass from the last layer's scores. Why it matters for the gap between FF and "
          "BP: MF changes FF's objective, not its locality, so where MF comes close to BP and FF does not, the gap "
          "lies mostly in FF's positive/negative goodness objective rather than in training layers locally.",
    "bp": "**BP (backpropagation)** is the baseline: the same hidden layers with a softmax head, trained end to end "
          "on cross-entropy, the error of the output flowing back through every layer.",
}


# Each algorithm's name written out, for a legend's or picker's key ("BP: backpropagation"); the paragraphs above
# say what each one does.
ALGORITHM_NAMES = {"ff": "Forward-Forward", "fgff": "Fine-Grained Forward-Forward (FF with significance factors)",
                   "mf": "Mono-Forward (local cross-entropy per layer)",
                   "bp": "backpropagation, the end-to-end baseline"}


def algorithms_key(algos: Iterable[str]) -> str:
    """One sentence naming each of ``algos`` in full, for under a legend or picker: "FF: Forward-Forward; BP:
    backpropagation, the end-to-end baseline." ("" for none; an unknown name is left out)."""
    parts = [f"{algo_label(a)}: {ALGORITHM_NAMES[a]}" for a in dict.fromkeys(algos) if a in ALGORITHM_NAMES]
    return "; ".join(parts) + "." if parts else ""


def algorithm_note(algo: str) -> str:
    """The paragraph on ``algo`` (``ALGORITHM_NOTES``); an unknown name has none ("")."""
    return ALGORITHM_NOTES.get(algo, "")


def not_applicable(algo: str, what: str) -> str:
    """The sentence a page about goodness or the factors s shows for a run of ``algo`` that has neither (MF, BP):
    ``what`` (e.g. "the significance matrix") does not apply to it, and why."""
    return (f"{algo_label(algo)} runs are trained by cross-entropy and have no goodness and no significance "
            f"factors, so {what} does not apply to them.")
