"""The in-process wing (``--backend optuna``): this process as the backend (:mod:`.backend`),
and Optuna's study asking, training and telling one trial at a time (:mod:`.loop`). No Ray."""
