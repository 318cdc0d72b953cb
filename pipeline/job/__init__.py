"""A job's truth, owned once: its folder, its journal, its cells' states, money and timings.

`folder` (every path of a job, and which manifest owns it), `journal` (the events and their
replay), `records` (cell states and what a run does with each: `resume_action`), `ledger`
(spent and committed), `price` (which price applies), `timing` (how long a cell takes, the
ETA), `status` (the summary every command prints), `forecast` (what a run of a plan would do),
`durable` (atomic writes). Read-only but for the journal's writer and the small files a run
leaves.
"""
