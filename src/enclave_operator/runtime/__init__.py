"""The enclave runtime (simulation): a client of LAS and CAS that gets a workload attested and
executes it with the environment and secrets its policy grants."""
