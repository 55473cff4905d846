"""The cohort wing: TPE asks many configs, each cohort trains them as one batched model
(:mod:`.loop`) on whatever runner the backend lends (:mod:`tunefleet.search.cohort_jobs`);
:mod:`.sizing` says how many at a time."""
