"""The run stage (prepare → job → run → report): submit, poll, collect and download every cell
that is not done; resume on rerun. The reports are written above it (pipeline.api).

`session` (the entry point: lock, journal, client, snapshot), `runner` (scheduling and
the drive loop), `submit`, `poll` (with the polling planner), `collect` (results, downloads,
probes with `media`), `control` (slots, stopping and the live requests, composed),
`stopping` (stop flags and reasons, failure limits, the refusal breaker), `policy` (the client
errors that end a run, the retry budgets, the full disk), `auto` (`concurrency: auto`) and
`live` (the live requests it learns from),
`cancel`, `progress` (an observer of the job's figures).
"""
