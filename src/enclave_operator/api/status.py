"""Status schemas: the state, conditions and metrics the reconciler reports for each kind.

Every kind shares ``state``, ``observedGeneration`` and ``conditions``; the service kinds add
their own metrics. Counters accept -1, which the reconciler writes when it cannot tell.
"""

from __future__ import annotations

from enclave_operator.api.schema import (
    Schema,
    array,
    boolean,
    enum,
    integer,
    map_of,
    obj,
    string,
    timestamp,
)

STATES = ("HEALTHY", "PENDING", "UNHEALTHY")
CONDITION_STATUSES = ("True", "False", "Unknown")


def counter(description: str) -> Schema:
    """A count that is -1 while unknown."""
    return integer(f"{description} -1 means it could not be determined.", minimum=-1)


def per_node(description: str) -> Schema:
    """A count per node name, each -1 while unknown."""
    return map_of(
        f"{description}, by node name. -1 for a node means it could not be determined.",
        {"type": "integer", "format": "int32", "minimum": -1},
    )


def condition() -> Schema:
    """One entry of ``status.conditions``."""
    return obj(
        "One observation about the resource or one of the objects it owns.",
        {
            "type": string(
                "What the condition is about, e.g. IsHealthy. Conditions about an owned object"
                " carry that object's identity as a prefix.",
                min_length=1,
                max_length=316,
            ),
            "status": enum(
                "Whether the condition holds: True, False, or Unknown when it could not be"
                " checked.",
                CONDITION_STATUSES,
            ),
            "reason": string(
                "A short CamelCase code for the last transition, for tools.", max_length=1024
            ),
            "message": string("Explanation of the last transition, for people.", max_length=32768),
            "lastTransitionTime": timestamp("When the status last changed."),
            "observedGeneration": integer(
                "metadata.generation of the resource when the condition was last checked.",
                minimum=0,
                fmt="int64",
            ),
        },
        required=["type", "status"],
    )


def base_properties() -> dict[str, Schema]:
    """The status fields every kind has."""
    return {
        "state": enum(
            "Overall health. HEALTHY: reconciled and no problem seen. PENDING: reconciliation"
            " is under way or waiting. UNHEALTHY: a problem was found that needs a person or"
            " will not clear by itself.",
            STATES,
        ),
        "observedGeneration": integer(
            "metadata.generation of the spec that the operator last reconciled.",
            minimum=0,
            fmt="int64",
        ),
        "conditions": array(
            "Detailed findings behind the state, one entry per condition type.",
            condition(),
            list_type="map",
            map_keys=["type"],
        ),
    }


def _status(description: str, extra: dict[str, Schema]) -> Schema:
    return obj(description, {**base_properties(), **extra})


def cas_status() -> Schema:
    """``status`` of a CAS."""
    return _status(
        "Observed state of the CAS, written by the operator.",
        {
            "version": string("CAS version reported by the running CAS pod."),
            "certificateNotAfter": timestamp(
                "When the TLS certificate CAS serves (tls.crt of its Secret cas-<name>-tls)"
                " expires. The CertificateValid condition turns False 30 days before."
            ),
        },
    )


def las_node() -> Schema:
    """One entry of LAS's ``status.nodes``."""
    return obj(
        "The LAS instance on one node.",
        {
            "ready": boolean("Whether the LAS pod on this node is ready."),
            "pod": string("Name of the LAS pod on this node."),
            "hostIP": string("Address of the node, where workloads reach LAS."),
            "version": string("LAS version reported by this pod."),
            "since": timestamp("When the pod entered its current readiness."),
        },
    )


def las_status() -> Schema:
    """``status`` of a LAS."""
    return _status(
        "Observed state of the LAS, written by the operator.",
        {
            "desiredNumberScheduled": counter(
                "Number of nodes that should run LAS (those matching spec.nodeSelector)."
            ),
            "numberAvailable": counter("Number of nodes whose LAS pod is ready."),
            "nodes": map_of("LAS instances by node name.", las_node()),
            "version": string("LAS version reported by the running LAS pods."),
            "lasReplicaAlert": counter(
                "Alert: number of nodes that should run LAS but do not; 0 when all is well."
            ),
        },
    )


def sgxplugin_status() -> Schema:
    """``status`` of an SGXPlugin."""
    return _status(
        "Observed state of the SGX device plugin, written by the operator.",
        {
            "capacitySGXDevices": counter("SGX devices that pods can be given, in total."),
            "capacitySGXDevicesPerNode": per_node("SGX devices that pods can be given"),
            "usedSGXDevices": counter("SGX devices given to pods, in total."),
            "usedSGXDevicesPerNode": per_node("SGX devices given to pods"),
            "availableSGXDevices": counter(
                "SGX devices that pods can still be given (capacity minus used), in total."
            ),
            "availableSGXDevicesPerNode": per_node("SGX devices that pods can still be given"),
            "desiredReplicas": counter(
                "Number of nodes that should run the plugin (those matching spec.nodeSelector)."
            ),
            "readyReplicas": counter("Number of nodes whose plugin pod is ready."),
            "sgxDeviceAlert": counter(
                "Alert: number of nodes running the plugin that have no SGX device left in"
                " some device category; 0 when all is well."
            ),
            "sgxReplicaAlert": counter(
                "Alert: number of nodes that should run the plugin but do not; 0 when all is well."
            ),
        },
    )


POLICY_STATES = ("REGISTERED", "PENDING", "FAILED")


def policy_status(kind: str) -> Schema:
    """``status`` of a SignedPolicy or EncryptedPolicy: its own states, not the services'."""
    props = base_properties()
    props["state"] = enum(
        "REGISTERED: the CAS holds the policy. PENDING: not registered yet, for example while"
        " the CAS cannot be reached (retried with backoff). FAILED: the CAS refused the policy"
        " or casAddress cannot be used; final, since the resource cannot change.",
        POLICY_STATES,
    )
    fields = {
        "policyName": string("Name of the policy in the CAS (from the policy document)."),
        "digest": string("SHA-256 of the policy text that the CAS stored, as hex."),
        "signers": array(
            "Fingerprints of the policy's signers, its owners in the CAS.",
            {"type": "string", "maxLength": 64},
            max_items=64,
        ),
        "casURL": string("The CAS endpoint the policy was registered at."),
        "casInstance": string(
            "Instance id of the CAS store holding the policy; when the CAS reports another"
            " (it restarted with an empty store), the policy is registered again."
        ),
    }
    return obj(
        f"Observed state of the {kind}: whether it is registered in its CAS.",
        {**props, **fields},
    )
