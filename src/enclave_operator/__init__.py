"""enclave-operator: run Intel SGX confidential-computing services on Kubernetes."""

__version__ = "0.1.0"
