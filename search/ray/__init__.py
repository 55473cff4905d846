"""The Ray wing: Ray as a backend (:mod:`.backend`: a local head started ahead, or a cluster;
its shutdown), cohorts as Ray tasks (:mod:`.cohort_tasks`), and Ray Tune trials, one config
each (:mod:`.tune_loop` on the driver, :mod:`.tune_trial` in a trial's process,
:mod:`.tune_callback` relaying ended trials). Nothing here is imported unless Ray runs the search."""
