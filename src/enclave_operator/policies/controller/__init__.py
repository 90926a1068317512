"""The policy controller: SignedPolicy and EncryptedPolicy resources registered in their CAS,
in the observe → decide → act → report shape of the service controller."""

from enclave_operator.policies.controller.worker import PolicyController

__all__ = ["PolicyController"]
