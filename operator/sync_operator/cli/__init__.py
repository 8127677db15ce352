"""kubectl-sync: the kubectl plugin for SyncJobs and SyncSchedules (``kubectl sync ...``).

Pure formatting (humanize, progressbar, rows) is kept apart from I/O (commands, tables)
so what users read can be tested without a cluster.
"""
