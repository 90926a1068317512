"""Small builders for OpenAPI v3 structural schemas, as CustomResourceDefinitions need them.

Why not a library: the Kubernetes client's ``V1JSONSchemaProps`` is untyped and verbose, and
JSON-schema generators (pydantic and friends) emit ``$ref``, ``anyOf`` unions and ``title``
fields that the API server's structural-schema rules reject. Plain dicts built by a handful of
typed functions keep the generated YAML exactly as the API server wants it.

Every builder takes the description first, so a field cannot be declared without one, and
returns a fresh dict, so no two places of a CRD share (and YAML-alias) the same object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Schema = dict[str, Any]
"""One node of an OpenAPI v3 schema, as it is written into the CRD."""

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""The pattern Kubernetes itself publishes for ``resource.Quantity`` (e.g. 500m, 1Gi, 2)."""

DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1123 label, the syntax of namespace names (at most 63 characters)."""

DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A DNS-1123 subdomain, the syntax of most object names (at most 253 characters)."""


def _node(kind: str | None, description: str, **fields: Any) -> Schema:
    """Start a node with its type and description and drop the options left as ``None``."""
    node: Schema = {"description": description}
    if kind is not None:
        node["type"] = kind
    node.update({key: value for key, value in fields.items() if value is not None})
    return node


def rule(
    expression: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
) -> Schema:
    """A CEL validation; ``field_path`` makes the API server's error name the offending field."""
    validation: Schema = {"rule": expression, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    if reason is not None:
        validation["reason"] = reason
    return validation


def _rules(rules: Sequence[Schema]) -> list[Schema] | None:
    return [dict(r) for r in rules] or None


def string(
    description: str,
    *,
    default: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    fmt: str | None = None,
    nullable: bool = False,
    rules: Sequence[Schema] = (),
) -> Schema:
    """A string; give CEL-checked strings a ``max_length`` so their rule cost stays bounded."""
    return _node(
        "string",
        description,
        default=default,
        minLength=min_length,
        maxLength=max_length,
        pattern=pattern,
        format=fmt,
        nullable=True if nullable else None,
        **{"x-kubernetes-validations": _rules(rules)},
    )


def integer(
    description: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    fmt: str = "int32",
) -> Schema:
    """An integer, 32-bit unless told otherwise (generations and counters may want int64)."""
    return _node(
        "integer", description, format=fmt, default=default, minimum=minimum, maximum=maximum
    )


def port(description: str, *, default: int | None = None) -> Schema:
    """A TCP port number, 1 to 65535."""
    return integer(description, default=default, minimum=1, maximum=65535)


def boolean(description: str, *, default: bool | None = None) -> Schema:
    """A boolean."""
    return _node("boolean", description, default=default)


def enum(description: str, values: Sequence[str], *, default: str | None = None) -> Schema:
    """A string restricted to ``values``; the default, if any, must be one of them."""
    if default is not None and default not in values:
        raise ValueError(f"default {default!r} is not one of {list(values)}")
    return _node("string", description, enum=list(values), default=default)


def quantity(
    description: str,
    *,
    default: str | None = None,
    max_length: int | None = None,
    rules: Sequence[Schema] = (),
) -> Schema:
    """A ``resource.Quantity``: an integer or a string such as ``1Gi`` or ``500m``.

    Int-or-string is the one place where a structural schema may leave out ``type``.
    Give it a ``max_length`` when CEL rules read it, to bound their estimated cost.
    """
    return _node(
        None,
        description,
        anyOf=[{"type": "integer"}, {"type": "string"}],
        pattern=QUANTITY_PATTERN,
        default=default,
        maxLength=max_length,
        **{"x-kubernetes-int-or-string": True, "x-kubernetes-validations": _rules(rules)},
    )


def map_of(
    description: str,
    values: Schema,
    *,
    default: Mapping[str, Any] | None = None,
    max_properties: int | None = None,
) -> Schema:
    """An object with arbitrary keys whose values all follow ``values``."""
    return _node(
        "object",
        description,
        additionalProperties=values,
        default=dict(default) if default is not None else None,
        maxProperties=max_properties,
    )


def string_map(description: str, *, default: Mapping[str, str] | None = None) -> Schema:
    """A ``map[string]string``, such as labels, annotations or a node selector."""
    return map_of(description, {"type": "string"}, default=default)


def obj(
    description: str,
    properties: Mapping[str, Schema],
    *,
    required: Sequence[str] = (),
    default: Mapping[str, Any] | None = None,
    rules: Sequence[Schema] = (),
) -> Schema:
    """An object with known fields; ``default={}`` lets the fields' own defaults apply."""
    unknown = sorted(set(required) - set(properties))
    if unknown:
        raise ValueError(f"required fields {unknown} are not properties")
    return _node(
        "object",
        description,
        properties=dict(properties),
        required=sorted(required) or None,
        default=dict(default) if default is not None else None,
        **{"x-kubernetes-validations": _rules(rules)},
    )


def array(
    description: str,
    items: Schema,
    *,
    default: Sequence[Any] | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    list_type: str | None = None,
    map_keys: Sequence[str] = (),
    rules: Sequence[Schema] = (),
) -> Schema:
    """A list; ``list_type`` is ``atomic``, ``set`` or ``map`` (then with ``map_keys``)."""
    if (list_type == "map") != bool(map_keys):
        raise ValueError("map_keys go with list_type='map' and only with it")
    return _node(
        "array",
        description,
        items=items,
        default=list(default) if default is not None else None,
        minItems=min_items,
        maxItems=max_items,
        **{
            "x-kubernetes-list-type": list_type,
            "x-kubernetes-list-map-keys": list(map_keys) or None,
            "x-kubernetes-validations": _rules(rules),
        },
    )


def timestamp(description: str) -> Schema:
    """An RFC 3339 date-time, the way Kubernetes writes timestamps."""
    return string(description, fmt="date-time")


def printer_column(
    name: str,
    json_path: str,
    kind: str,
    description: str,
    *,
    priority: int = 0,
) -> Schema:
    """An ``additionalPrinterColumns`` entry; priority above 0 shows only with ``-o wide``."""
    column: Schema = {"name": name, "type": kind, "jsonPath": json_path}
    column["description"] = description
    if priority:
        column["priority"] = priority
    return column
