"""What `up` records about a running dev cluster, so that `status` and `down` find it again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from enclave_operator.devcluster import processes


@dataclass
class ComponentState:
    name: str
    pid: int
    binary: str
    health: str

    def running(self) -> bool:
        return processes.alive(self.pid, self.binary)


@dataclass
class State:
    """What `up` recorded, so that `status` and `down` find the processes again."""

    server: str
    nodes: int
    sgx: str
    started: float
    components: list[ComponentState] = field(default_factory=list)
    real_nodes: int = 0

    def dump(self) -> str:
        return json.dumps(
            {**self.__dict__, "components": [c.__dict__ for c in self.components]}, indent=2
        )

    @classmethod
    def load(cls, text: str) -> State:
        raw: dict[str, Any] = json.loads(text)
        comps = [ComponentState(**c) for c in raw.pop("components")]
        return cls(**raw, components=comps)
