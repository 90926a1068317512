"""Installing, inspecting and removing enclave-operator on a cluster: what `enclavectl install`,
`uninstall`, `status`, `check` and `precheck` do, with the pure parts kept apart for tests."""
