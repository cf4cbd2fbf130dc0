"""`hmasd-sweep`: many ordinary trainings (grid points x seeds) as Ray tasks, then their statistics.

cli (the command line) -> plan (runs, names, what is finished) -> scheduler (Ray tasks, Ctrl-C)
-> task (one training in a subprocess) -> report (sweep.md, sweep.png); resources sizes a machine.
"""
