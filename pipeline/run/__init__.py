"""Stage 2, run: submit, poll, collect and download every cell that is not done; resume on rerun.

`session` (the entry point: lock, journal, client, snapshot, reports), `runner` (scheduling and
the drive loop), `submit`, `poll` (with the polling planner), `collect` (results, downloads,
probes with `media`), `control` (slots, stop reasons, failure limits), `cancel`, `progress`
(an observer of the job's figures).
"""
