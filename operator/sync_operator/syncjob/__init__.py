"""The SyncJob controller: state machine, reconciler, Job builder, Redis link, progress relay
and, in `queue/`, who may start when."""
