"""The running operator: settings, wiring, Lease election, metrics and the kopf layer."""
