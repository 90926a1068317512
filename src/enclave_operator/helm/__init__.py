"""Helm: release records read from the cluster, and the `helm` binary for changes."""
