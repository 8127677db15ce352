"""The running operator: settings, wiring, Lease election and the kopf layer."""
