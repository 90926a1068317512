"""CAS, the configuration and attestation service, in simulation mode: it stores policies and
(with LAS) releases their secrets to attested workloads, with no enclave around it."""
