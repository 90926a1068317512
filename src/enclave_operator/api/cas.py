"""The CAS spec: how the Configuration and Attestation Service is exposed and where it stores data.

Cross-field rules (node ports only with NodePort, a load balancer address only with
LoadBalancer, distinct ports) are CEL validations, so the API server refuses a contradictory
spec at once instead of the reconciler failing on it later.
"""

from __future__ import annotations

from enclave_operator.api.common import common_properties
from enclave_operator.api.persistence_rules import persistence_transitions
from enclave_operator.api.schema import (
    Schema,
    array,
    boolean,
    enum,
    obj,
    port,
    quantity,
    rule,
    string,
    string_map,
)

SERVICE_TYPES = ("ClusterIP", "LoadBalancer", "NodePort")
DEFAULT_SERVICE_TYPE = "ClusterIP"
DEFAULT_CLIENT_PORT = 8081
DEFAULT_ENCLAVE_PORT = 18765

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
DEFAULT_ACCESS_MODES = ("ReadWriteOnce",)
DEFAULT_MOUNT_PATH = "/etc/cas/db"
DEFAULT_SIZE = "1Gi"
WHEN_DELETED_RETAIN, WHEN_DELETED_DELETE = "Retain", "Delete"


def service() -> Schema:
    """``spec.service``: the Kubernetes Service in front of CAS."""
    return obj(
        "How CAS is reached: the type and ports of the Kubernetes Service created for it.",
        {
            "type": enum(
                "Type of the Service in front of CAS. ClusterIP reaches it only from inside"
                " the cluster; NodePort also opens a port on every node; LoadBalancer asks the"
                " cloud provider for an external address.",
                SERVICE_TYPES,
                default=DEFAULT_SERVICE_TYPE,
            ),
            "clientPort": port(
                "Port of CAS's client API, used by policy owners and tools to register and"
                " read policies.",
                default=DEFAULT_CLIENT_PORT,
            ),
            "enclavePort": port(
                "Port on which enclaves attest to CAS and receive their configuration and"
                " secrets. Must differ from clientPort.",
                default=DEFAULT_ENCLAVE_PORT,
            ),
            "loadBalancerIP": string(
                "IPv4 or IPv6 address to request from the load balancer. Allowed only with"
                " type LoadBalancer, and honoured only where the cloud provider supports"
                " choosing the address.",
                max_length=45,
                rules=[rule("isIP(self)", "must be a valid IPv4 or IPv6 address")],
            ),
            "nodePorts": obj(
                "Fixed node ports for the two CAS ports. Allowed only with type NodePort; a"
                " port left out is picked by Kubernetes.",
                {
                    "clientPort": port("Node port forwarded to the client port."),
                    "enclavePort": port("Node port forwarded to the enclave port."),
                },
                rules=[
                    rule(
                        "!has(self.clientPort) || !has(self.enclavePort)"
                        " || self.clientPort != self.enclavePort",
                        "the client and enclave node ports must differ",
                        field_path=".enclavePort",
                    )
                ],
            ),
            "annotations": string_map(
                "Annotations added to the CAS Service, for instance to configure a cloud"
                " provider's load balancer.",
                default={},
            ),
        },
        default={},
        rules=[
            rule(
                "!has(self.nodePorts) || (has(self.type) && self.type == 'NodePort')",
                "nodePorts may only be set when type is NodePort",
                field_path=".nodePorts",
            ),
            rule(
                "!has(self.loadBalancerIP) || (has(self.type) && self.type == 'LoadBalancer')",
                "loadBalancerIP may only be set when type is LoadBalancer",
                field_path=".loadBalancerIP",
            ),
            rule(
                "!has(self.clientPort) || !has(self.enclavePort)"
                " || self.clientPort != self.enclavePort",
                "clientPort and enclavePort must differ",
                field_path=".enclavePort",
            ),
        ],
    )


def ingress() -> Schema:
    """``spec.ingress``: the client API behind an ingress controller, TLS passed through."""
    return obj(
        "An Ingress for the CAS client API, off by default. TLS is passed through to CAS"
        " (SNI routing, ingress-nginx's ssl-passthrough annotation, which its controller must"
        " run with --enable-ssl-passthrough): CAS's own certificate reaches the clients, so"
        " `host` must be one of its names (enclavectl install --domain).",
        {
            "enabled": boolean("Create the Ingress.", default=False),
            "host": string(
                "Host name clients use; routed by SNI.",
                max_length=253,
                pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            ),
            "className": string(
                "IngressClass of the controller (ingressClassName); unset: the default.",
                max_length=253,
            ),
            "annotations": string_map(
                "More annotations for the Ingress, beside ssl-passthrough.", default={}
            ),
        },
        default={},
        rules=[
            rule(
                "!has(self.enabled) || !self.enabled || has(self.host)",
                "host is required when the Ingress is enabled",
                field_path=".host",
            )
        ],
    )


def persistence() -> Schema:
    """``spec.persistence``: the volume that keeps the CAS database across pod restarts."""
    return obj(
        "Storage of the CAS database. Without persistence the database lives in the pod and"
        " is lost whenever the pod is replaced.",
        {
            "enabled": boolean(
                "Keep the database on a PersistentVolumeClaim created together with CAS.",
                default=False,
            ),
            "mountPath": string(
                "Absolute path in the CAS container where the database volume is mounted.",
                default=DEFAULT_MOUNT_PATH,
                min_length=1,
                max_length=4096,
                rules=[rule("self.startsWith('/')", "must be an absolute path (start with /)")],
            ),
            "storageClass": string(
                "StorageClass of the claim. Unset or null uses the cluster's default class."
                ' "-" writes an empty storageClassName, which turns dynamic provisioning off'
                " so that the claim binds only to a PersistentVolume created beforehand.",
                nullable=True,
                max_length=253,
                pattern=r"^(-|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$",
            ),
            "accessModes": array(
                "How the volume may be mounted. CAS runs a single pod, so ReadWriteOnce is"
                " enough; ReadWriteOncePod cannot be combined with another mode.",
                enum("A PersistentVolume access mode.", ACCESS_MODES),
                default=list(DEFAULT_ACCESS_MODES),
                min_items=1,
                max_items=len(ACCESS_MODES),
                list_type="set",
                rules=[
                    rule(
                        "!('ReadWriteOncePod' in self) || size(self) == 1",
                        "ReadWriteOncePod cannot be combined with other access modes",
                    )
                ],
            ),
            "size": quantity(
                "Capacity requested for the database volume, a quantity greater than zero"
                " such as 1Gi or 500Mi.",
                default=DEFAULT_SIZE,
                max_length=64,
                rules=[
                    rule(
                        "type(self) == int ? self > 0"
                        " : isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
                        "must be a quantity greater than zero",
                    )
                ],
            ),
            "whenDeleted": enum(
                "What happens to the database claim when this CAS is deleted. Retain (the"
                " default) keeps it, with the database, for a CAS of the same name to use"
                " again; Delete deletes it, and the database with it. Nothing else ever"
                " deletes it: the chart marks it helm.sh/resource-policy: keep, and a failed"
                " upgrade is rolled back, never uninstalled.",
                (WHEN_DELETED_RETAIN, WHEN_DELETED_DELETE),
                default=WHEN_DELETED_RETAIN,
            ),
        },
        default={},
        rules=persistence_transitions(),
    )


LAS_ENROLMENT_ANY = "Any"
LAS_ENROLMENT_CERTIFICATE = "Certificate"


def cas_spec() -> Schema:
    """The whole ``spec`` of a CAS."""
    return obj(
        "Desired state of a Configuration and Attestation Service (CAS): the service that"
        " checks the attestation of enclaves and then gives them the configuration and"
        " secrets their policies grant.",
        {
            **common_properties("CAS"),
            "service": service(),
            "persistence": persistence(),
            "ingress": ingress(),
            "lasEnrolment": enum(
                "Which LAS may enrol their attestation keys. Any (the default) accepts a LAS"
                " that proves possession of its key, and records whether it also showed a"
                " client certificate (CN enclave-las) from this CAS's CA; Certificate refuses"
                " a LAS without one. enclavectl install issues that certificate and sets"
                " Certificate.",
                (LAS_ENROLMENT_ANY, LAS_ENROLMENT_CERTIFICATE),
                default=LAS_ENROLMENT_ANY,
            ),
        },
        default={},
        rules=[
            rule(
                "!has(self.autoUpdate) || !self.autoUpdate",
                "autoUpdate is disabled for CAS: replacing the CAS image needs care with its"
                " database and policies, so CAS is updated by changing spec.image",
                field_path=".autoUpdate",
            )
        ],
    )
