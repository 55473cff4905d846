"""The cohort wing: TPE asks many configs, each cohort trains them as one batched model
(:mod:`.loop`), on whatever the backend lends (:mod:`.runner`); :mod:`.sizing` says how many
at a time, :mod:`.rungs` judges members at ASHA's rungs."""
