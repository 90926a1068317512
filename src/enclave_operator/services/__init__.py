"""The services the charts run: CAS, LAS and the SGX device plugin (simulation mode)."""
