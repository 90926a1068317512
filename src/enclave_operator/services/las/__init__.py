"""LAS, the Local Attestation Service (simulation): one per node, quotes signed by the node's
attestation key, which it enrols with CAS."""
