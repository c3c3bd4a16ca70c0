"""The experiment as stages over a run folder: `rundir` owns the folder (the only module that spells
a path inside it), `stages` names every stage (splits, fit, labels, directions, select, test, probe,
compare, sweep, report), and `pipeline`, `labels`, `probe_run`, `compare`, `sweeps` implement
them; `launch` runs shards as submitit jobs, `upgrade` converts old run folders. Imports no
plotting library: the report stage lives in `workbench.report`."""
