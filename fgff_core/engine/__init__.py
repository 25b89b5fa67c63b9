"""The engine: the paper's algorithm and nothing else.

``goodness`` (normalisation, goodness eq. 2-3, losses eq. 1, a layer's step), ``label_input`` (the label
embedding, Fig. 2), ``model`` (``FFLayer``, ``FFNet``, ``BPNet``; the prediction rule), ``optim`` (the
significance update, Algorithm 1 l. 15-17), ``negatives``, ``augment``, ``readout``, ``training`` (the
``Trainer``: Algorithm 1), ``reference`` (Algorithm 1 as printed, no speed-ups: the tests' oracle),
``events`` (what training reports), ``epoch_log``, ``device``, ``runtime``, ``checkpoint`` (safetensors
save/load), ``memory`` (a run's memory estimated from its config, and the check) and ``memory_budget`` (what a
run may use)."""
