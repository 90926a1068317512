"""SignedPolicy and EncryptedPolicy specs: the output of signing or encrypting a policy.

A signature or an encryption covers the policy as a whole, so changing one field of such a
resource would only produce something that no longer verifies. The API server therefore
refuses any change to ``spec`` (``self == oldSelf``); a new version is signed or encrypted
again and submitted as a new resource. Length limits bound the cost of that comparison.
"""

from __future__ import annotations

from enclave_operator.api.schema import Schema, array, obj, rule, string

MAX_POLICY_LENGTH = 512 * 1024
"""Largest policy text accepted; far above real policies, well below the object size limit."""

MAX_KEY_LENGTH = 8192
"""Largest signer, signature or key; a PEM-encoded RSA-4096 public key needs about 800."""

MAX_SIGNATURES = 64

SIGNED_IMMUTABLE_MESSAGE = (
    "a SignedPolicy cannot be changed: sign the new policy again, then delete this"
    " SignedPolicy and create it anew with the new policy and signatures"
)
ENCRYPTED_IMMUTABLE_MESSAGE = (
    "an EncryptedPolicy cannot be changed: encrypt the new policy again, then delete this"
    " EncryptedPolicy and create it anew with the new ciphertext"
)


def cas_address() -> Schema:
    """Which CAS the policy is registered with."""
    return string(
        "Address of the CAS the policy is registered with, as host or host:port, for example"
        " cas.enclave-system.svc:8081.",
        min_length=1,
        max_length=512,
    )


def signed_policy_spec() -> Schema:
    """The whole, immutable ``spec`` of a SignedPolicy."""
    signature = obj(
        "One signature over the policy text.",
        {
            "signer": string(
                "Who signed: the signer's public key or key identity, as printed by the"
                " signing tool.",
                min_length=1,
                max_length=MAX_KEY_LENGTH,
            ),
            "signature": string(
                "The signature over the policy text, base64-encoded.",
                min_length=1,
                max_length=MAX_KEY_LENGTH,
            ),
        },
        required=["signer", "signature"],
    )
    return obj(
        "A policy together with its signatures, exactly as the signing tool produced them."
        " Immutable: to change the policy, sign the new version and re-create the resource.",
        {
            "casAddress": cas_address(),
            "policy": string(
                "The policy document (YAML) exactly as it was signed, byte for byte.",
                min_length=1,
                max_length=MAX_POLICY_LENGTH,
            ),
            "signatures": array(
                "Signatures over the policy, at least one.",
                signature,
                min_items=1,
                max_items=MAX_SIGNATURES,
            ),
        },
        required=["casAddress", "policy", "signatures"],
        rules=[rule("self == oldSelf", SIGNED_IMMUTABLE_MESSAGE)],
    )


def encrypted_policy_spec() -> Schema:
    """The whole, immutable ``spec`` of an EncryptedPolicy."""
    return obj(
        "A policy encrypted for one CAS, exactly as the encryption tool produced it."
        " Immutable: to change the policy, encrypt the new version and re-create the resource.",
        {
            "casAddress": cas_address(),
            "policy": string(
                "The encrypted policy, base64-encoded. Only the CAS holding the private half"
                " of encryptionKey can read it.",
                min_length=1,
                max_length=MAX_POLICY_LENGTH,
            ),
            "encryptionKey": string(
                "Public encryption key of the target CAS that the policy was encrypted to;"
                " lets the operator check that the policy is meant for that CAS.",
                min_length=1,
                max_length=MAX_KEY_LENGTH,
            ),
        },
        required=["casAddress", "policy", "encryptionKey"],
        rules=[rule("self == oldSelf", ENCRYPTED_IMMUTABLE_MESSAGE)],
    )
