"""The policy file: a small, documented YAML format, validated with line and field in errors.

A policy names the services that may receive secrets after attestation. Each service is
identified by its measurement (what `enclavectl enclave run` computes over the program and its
arguments), may run exactly one command, and receives plain environment variables and secrets
(as environment variables) once attested. Unknown keys are errors, so a typo never silently
drops a setting. Anchors and aliases are refused: a few bytes of aliases could otherwise make
validation walk the same nodes billions of times.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map"))
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """The safe loader with a leaner tag resolver: the same tags (policies only tell strings
    from other scalars) without the path-resolver bookkeeping on every node."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


MAX_NESTING = 1000
"""Deeper documents are refused before composing: libyaml's composer recurses on the C stack
(tens of thousands of levels crash the process); a valid policy nests four levels."""
_NESTING = ("[", "{", "-", ":", "?")
"""Every level of nesting needs one of these, so their count bounds the depth."""

NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,126}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
MEASUREMENT = re.compile(r"^[0-9a-f]{64}$")
MAX_SECRET = 64 * 1024


class PolicyError(ValueError):
    """A policy that does not validate; the message names the line and the field."""

    def __init__(self, line: int | None, path: str, message: str) -> None:
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")
        self.line, self.path, self.reason = line, path, message


@dataclass(frozen=True)
class Service:
    name: str
    measurement: str
    command: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    """Environment variable → name of the policy secret it receives."""


@dataclass(frozen=True)
class Policy:
    name: str
    services: tuple[Service, ...]
    secrets: dict[str, str]
    version: str = ""

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)


def digest(text: str) -> str:
    """The policy's identity: SHA-256 over its exact UTF-8 bytes, as hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def parse(text: str) -> Policy:
    """Parse and validate a policy text; PolicyError says where and why it is wrong."""
    try:
        if ("&" in text and "*" in text) or sum(map(text.count, _NESTING)) > MAX_NESTING:
            _check_structure(text)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise PolicyError(mark.line + 1 if mark else None, "", f"not YAML: {e.problem}") from e
    except yaml.YAMLError as e:
        raise PolicyError(None, "", f"not YAML: {e}") from e
    except UnicodeEncodeError as e:
        raise PolicyError(None, "", f"not valid Unicode (character {e.start})") from e
    except RecursionError as e:  # only the pure-Python composer (no libyaml) gets here
        raise PolicyError(None, "", "nested too deeply") from e
    if node is None:
        raise PolicyError(None, "", "the policy is empty")
    top = _mapping(node, "", {"name", "version", "services", "secrets"}, {"name", "services"})
    secrets = _secrets(top.get("secrets"))
    services_node = top["services"]
    items = _sequence(services_node, "services")
    if not items:
        raise PolicyError(_line(services_node), "services", "at least one service is required")
    services = tuple(_service(n, f"services[{i}]", secrets) for i, n in enumerate(items))
    seen: set[str] = set()
    for i, s in enumerate(services):
        if s.name in seen:
            raise PolicyError(_line(items[i]), f"services[{i}].name", f"{s.name!r} appears twice")
        seen.add(s.name)
    version = _scalar(top["version"], "version", str) if "version" in top else ""
    return Policy(_name(top["name"], "name"), services, secrets, version)


def _check_structure(text: str) -> None:
    """Walk the event stream (flat, no recursion): no aliases, no deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise PolicyError(
                    _event_line(event), "", f"nested deeper than {MAX_NESTING} levels"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            message = f"alias *{event.anchor}: anchors and aliases are not allowed"
            raise PolicyError(_event_line(event), "", message)


def _event_line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark else None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(
    node: yaml.Node, path: str, allowed: set[str], required: set[str]
) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise PolicyError(_line(node), path, "must be a mapping")
    out: dict[str, yaml.Node] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        where = f"{path}.{name}" if path else str(name)
        if not isinstance(name, str) or name not in allowed:
            raise PolicyError(
                _line(key), where, f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )
        if name in out:
            raise PolicyError(_line(key), where, "appears twice")
        out[name] = value
    for name in sorted(required - out.keys()):
        raise PolicyError(_line(node), f"{path}.{name}" if path else name, "is required")
    return out


def _sequence(node: yaml.Node, path: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise PolicyError(_line(node), path, "must be a list")
    return list(node.value)


_TYPES: dict[type, tuple[str, str]] = {
    str: ("tag:yaml.org,2002:str", "a string"),
    int: ("tag:yaml.org,2002:int", "an integer"),
}


def _scalar(node: yaml.Node, path: str, kind: type) -> Any:
    tag, what = _TYPES[kind]
    if not isinstance(node, yaml.ScalarNode) or node.tag != tag:
        raise PolicyError(_line(node), path, f"must be {what}")
    return node.value if kind is str else int(node.value)


def _checked(pattern: re.Pattern[str], what: str) -> Callable[[yaml.Node, str], str]:
    def check(node: yaml.Node, path: str) -> str:
        value: str = _scalar(node, path, str)
        if not pattern.match(value):
            raise PolicyError(_line(node), path, f"{value[:80]!r} is not {what}")
        return value

    return check


_name = _checked(NAME, "a name (lowercase letters, digits, '-', '_', '.'; at most 128)")
_env = _checked(ENV_NAME, "an environment variable name")
_measurement = _checked(MEASUREMENT, "a measurement (64 lowercase hex digits, SHA-256)")


def _string_map(
    node: yaml.Node, path: str, value: Callable[[yaml.Node, str], str]
) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        raise PolicyError(_line(node), path, "must be a mapping")
    out: dict[str, str] = {}
    for key, val in node.value:
        name = _env(key, f"{path} key")
        if name in out:
            raise PolicyError(_line(key), f"{path}.{name}", "appears twice")
        out[name] = value(val, f"{path}.{name}")
    return out


def _secrets(node: yaml.Node | None) -> dict[str, str]:
    if node is None:
        return {}
    out: dict[str, str] = {}
    for i, item in enumerate(_sequence(node, "secrets")):
        path = f"secrets[{i}]"
        fields = _mapping(item, path, {"name", "value"}, {"name", "value"})
        name = _name(fields["name"], f"{path}.name")
        if name in out:
            raise PolicyError(_line(item), f"{path}.name", f"{name!r} appears twice")
        value: str = _scalar(fields["value"], f"{path}.value", str)
        if len(value) > MAX_SECRET:
            raise PolicyError(_line(item), f"{path}.value", f"longer than {MAX_SECRET} characters")
        out[name] = value
    return out


def _service(node: yaml.Node, path: str, secrets: dict[str, str]) -> Service:
    allowed = {"name", "measurement", "command", "environment", "secrets"}
    fields = _mapping(node, path, allowed, {"name", "measurement", "command"})
    argv = _sequence(fields["command"], f"{path}.command")
    if not argv:
        raise PolicyError(_line(fields["command"]), f"{path}.command", "must not be empty")
    command = tuple(_scalar(a, f"{path}.command[{j}]", str) for j, a in enumerate(argv))

    def known_secret(n: yaml.Node, p: str) -> str:
        name: str = _scalar(n, p, str)
        if name not in secrets:
            raise PolicyError(_line(n), p, f"names secret {name!r}, which secrets does not define")
        return name

    def plain(n: yaml.Node, p: str) -> str:
        value: str = _scalar(n, p, str)
        return value

    env = fields.get("environment")
    granted = fields.get("secrets")
    return Service(
        name=_name(fields["name"], f"{path}.name"),
        measurement=_measurement(fields["measurement"], f"{path}.measurement"),
        command=command,
        environment=_string_map(env, f"{path}.environment", plain) if env else {},
        secrets=_string_map(granted, f"{path}.secrets", known_secret) if granted else {},
    )
