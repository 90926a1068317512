"""Policies: the file format, signing and encryption, the CAS client and the controller that
registers SignedPolicy and EncryptedPolicy resources in a CAS."""
