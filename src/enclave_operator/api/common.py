"""Spec fields that CAS, LAS and SGXPlugin share: image, pull settings, resources, placement.

The three service kinds run pods the same way, so they are configured the same way; the
descriptions name the service so ``kubectl explain`` reads naturally for each kind.
"""

from __future__ import annotations

from enclave_operator import __version__
from enclave_operator.api.schema import (
    DNS1123_LABEL_PATTERN,
    DNS1123_SUBDOMAIN_PATTERN,
    Schema,
    array,
    boolean,
    enum,
    integer,
    map_of,
    obj,
    quantity,
    rule,
    string,
    string_map,
)

DEFAULT_IMAGE = f"enclave-operator:{__version__}"
"""The image of this operator release, which also carries the services it runs."""

PULL_POLICIES = ("Always", "Never", "IfNotPresent")
DEFAULT_PULL_POLICY = "Always"


def auto_update(service: str) -> Schema:
    """The ``autoUpdate`` switch; CAS says that it ignores it (its database needs care)."""
    text = (
        f"When true, the operator moves {service} to the newest release of its image: it"
        " reads the tags of the image's repository from its registry (with the first valid"
        " imagePullSecret) at the operator's check interval (5 minutes by default), picks the"
        " newest semantic version within autoUpdateScope, and sets spec.image to it, which"
        " replaces the pods one at a time. Tags that are no semantic version are ignored."
    )
    if service == "CAS":
        text += " Disabled for CAS: the API server refuses true."
    return boolean(text, default=False)


AUTO_UPDATE_SCOPES = ("Patch", "Minor", "Major")
DEFAULT_AUTO_UPDATE_SCOPE = "Minor"


def auto_update_scope(service: str) -> Schema:
    """How far ``autoUpdate`` may move: a new major version may break its users."""
    return enum(
        f"How far autoUpdate may move {service}: Patch keeps the major and minor version,"
        " Minor (the default) keeps the major version, Major takes any newer version.",
        AUTO_UPDATE_SCOPES,
        default=DEFAULT_AUTO_UPDATE_SCOPE,
    )


def image(service: str) -> Schema:
    """The image the service's pods run."""
    return string(
        f"Container image that runs {service}. The default is the image of this operator"
        " release, which contains the service.",
        default=DEFAULT_IMAGE,
        min_length=1,
    )


def image_pull_policy() -> Schema:
    """When the kubelet pulls the image."""
    return enum(
        "When the kubelet fetches the image from its registry: Always (at every container"
        " start), IfNotPresent (only if the node does not have it yet) or Never (the image must"
        " already be on the node).",
        PULL_POLICIES,
        default=DEFAULT_PULL_POLICY,
    )


def image_pull_secrets() -> Schema:
    """Registry credentials, as references to Secrets."""
    secret_ref = obj(
        "A reference to a Secret holding registry credentials.",
        {
            "name": string(
                "Name of a Secret of type kubernetes.io/dockerconfigjson in the namespace"
                " where the service runs.",
                min_length=1,
                max_length=253,
                pattern=DNS1123_SUBDOMAIN_PATTERN,
            )
        },
        required=["name"],
    )
    return array(
        "Secrets with the credentials needed to pull the image from a private registry.",
        secret_ref,
    )


def resources(service: str) -> Schema:
    """Requests and limits for the service's containers."""
    return obj(
        f"Compute resources reserved for and allowed to the containers of {service}, written"
        " as in a Pod's container resources. Empty means no requests and no limits.",
        {
            "limits": map_of(
                "Upper bound per resource name (cpu, memory, sgx.intel.com/epc, ...) that a"
                " container may use.",
                quantity("An amount of the resource, e.g. 500m or 256Mi."),
            ),
            "requests": map_of(
                "Amount per resource name that the scheduler sets aside for a container. A"
                " resource with a limit but no request is requested at its limit.",
                quantity("An amount of the resource, e.g. 100m or 64Mi."),
            ),
        },
        default={},
    )


def node_selector(service: str) -> Schema:
    """Which nodes the service's pods may run on."""
    return string_map(
        f"Node labels that a node must all carry for pods of {service} to be scheduled on it."
        " Empty means any node.",
        default={},
    )


def tolerations(service: str) -> Schema:
    """Taints the service's pods tolerate, e.g. the taint SGX node pools carry."""
    toleration = obj(
        "A taint the pods tolerate, written as in a Pod's tolerations.",
        {
            "key": string("Taint key to match; empty with operator Exists matches every taint."),
            "operator": enum(
                "Exists matches any value; Equal matches `value`.",
                ["Exists", "Equal"],
                default="Equal",
            ),
            "value": string("Taint value to match when the operator is Equal."),
            "effect": enum(
                "Taint effect to match; empty matches every effect.",
                ["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ),
            "tolerationSeconds": integer(
                "For NoExecute: how long a pod stays on a node after the taint appears.",
                fmt="int64",
            ),
        },
    )
    return array(
        f"Taints that pods of {service} tolerate, for example"
        " {key: sgx.intel.com/epc, operator: Exists, effect: NoSchedule} on SGX node pools."
        " Empty means none.",
        toleration,
        default=[],
        max_items=32,
    )


def workload_namespace(service: str, kind: str) -> Schema:
    """``spec.namespace`` of the cluster-scoped kinds: where their workload runs; fixed."""
    return string(
        f"Namespace in which the operator creates the workload of {service} and the objects"
        " that go with it. When unset, the operator's own namespace is used. It cannot be"
        " changed afterwards.",
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL_PATTERN,
        rules=[rule("self == oldSelf", namespace_immutable_message(kind))],
    )


def namespace_unchanged(kind: str) -> Schema:
    """``spec.namespace`` of a cluster-scoped kind is fixed at creation: moving it would leave
    the old release (and its DaemonSet, holding the hostPort) behind. A rule on the field
    (``workload_namespace``) is skipped when the field is added or removed, so the spec checks
    that; comparing the two values here instead would exceed the API server's cost budget."""
    return rule(
        "has(self.namespace) == has(oldSelf.namespace)",
        namespace_immutable_message(kind),
        field_path=".namespace",
    )


def namespace_immutable_message(kind: str) -> str:
    return (
        f"spec.namespace cannot be changed: delete this {kind} and create it anew with the"
        " new namespace"
    )


def common_properties(service: str) -> dict[str, Schema]:
    """The fields shared by the three service kinds, keyed by field name."""
    scope = {} if service == "CAS" else {"autoUpdateScope": auto_update_scope(service)}
    return {
        "autoUpdate": auto_update(service),
        **scope,
        "image": image(service),
        "imagePullPolicy": image_pull_policy(),
        "imagePullSecrets": image_pull_secrets(),
        "resources": resources(service),
        "nodeSelector": node_selector(service),
        "tolerations": tolerations(service),
    }
