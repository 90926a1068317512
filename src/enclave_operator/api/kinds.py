"""The five custom resource kinds: their API groups, names and scope.

One place for these facts, so the CRD generator, the reconciler and the tests cannot disagree
about a plural or a group.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1beta1"
"""The only served (and stored) version of every kind."""

CATEGORY = "enclave"
"""Category of every kind, so that ``kubectl get enclave`` lists them all."""

SERVICES_GROUP = "services.enclave.dev"
BASE_GROUP = "base.enclave.dev"
POLICY_GROUP = "cas.enclave.dev"


@dataclass(frozen=True)
class Kind:
    """Identity of one custom resource kind, as the API server and kubectl know it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` written in objects of this kind, e.g. ``base.enclave.dev/v1beta1``."""
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        """The name of the CustomResourceDefinition object: ``<plural>.<group>``."""
        return f"{self.plural}.{self.group}"

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects."""
        return f"{self.kind}List"

    @property
    def scope(self) -> str:
        """``Namespaced`` or ``Cluster``, as a CRD spells it."""
        return "Namespaced" if self.namespaced else "Cluster"


CAS = Kind(
    group=SERVICES_GROUP,
    version=VERSION,
    kind="CAS",
    plural="cas",
    singular="cas",
    short_names=(),
    namespaced=True,
)
"""The Configuration and Attestation Service: one instance per namespace that wants one."""

LAS = Kind(
    group=BASE_GROUP,
    version=VERSION,
    kind="LAS",
    plural="las",
    singular="las",
    short_names=(),
    namespaced=False,
)
"""The Local Attestation Service, a node-wide daemon: cluster-scoped, its spec names a namespace."""

SGXPLUGIN = Kind(
    group=BASE_GROUP,
    version=VERSION,
    kind="SGXPlugin",
    plural="sgxplugins",
    singular="sgxplugin",
    short_names=("sgx",),
    namespaced=False,
)
"""The SGX device plugin, a node-wide daemon: cluster-scoped, its spec names a namespace."""

SIGNED_POLICY = Kind(
    group=POLICY_GROUP,
    version=VERSION,
    kind="SignedPolicy",
    plural="signedpolicies",
    singular="signedpolicy",
    short_names=("spol",),
    namespaced=True,
)
"""A signed policy to register in a CAS; immutable once created."""

ENCRYPTED_POLICY = Kind(
    group=POLICY_GROUP,
    version=VERSION,
    kind="EncryptedPolicy",
    plural="encryptedpolicies",
    singular="encryptedpolicy",
    short_names=("epol",),
    namespaced=True,
)
"""A policy encrypted to one CAS's key, to register in that CAS; immutable once created."""

ALL_KINDS: tuple[Kind, ...] = (CAS, LAS, SGXPLUGIN, SIGNED_POLICY, ENCRYPTED_POLICY)
"""Every kind, in the order the CRDs are generated."""
