"""Releases left by an interrupted or failed helm run: when they count as abandoned, and the
repair chosen for them (roll back to what worked; uninstall only when nothing did)."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import kopf

from enclave_operator.api.kinds import LAS
from enclave_operator.controller.registry import label_selectors
from enclave_operator.helm.releases import ReleaseStatus, from_secret, last_good
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import ActionKind, State, Status
from enclave_operator.reconcile.observe import FINALIZER, STALL_AFTER, Inputs, observe
from tests.unit.observations import healthy, record, release

NOW = 1_800_000_000.0
HOUR_AGO = NOW - 3600


def helm_secret(revision: int, status: str, labels: dict[str, str], created: str) -> dict[str, Any]:
    """A release record as helm v4's Secret driver writes it: base64(gzip(JSON)) in
    ``data.release`` (base64 again as Secret data) and its system labels."""
    payload = {
        "name": "las-x",
        "namespace": "ns",
        "version": revision,
        "info": {"status": status, "description": ""},
        "chart": {"metadata": {"version": "0.1.0"}},
        "config": {"a": 1},
        "manifest": "",
    }
    inner = base64.b64encode(gzip.compress(json.dumps(payload).encode()))
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.las-x.v{revision}",
            "namespace": "ns",
            "creationTimestamp": created,
            "labels": {
                "owner": "helm",
                "name": "las-x",
                "status": status,
                "version": str(revision),
                **labels,
            },
        },
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(inner).decode()},
    }


def observe_records(*records, busy=False):
    cr = {"metadata": {"uid": "u", "finalizers": [FINALIZER]}, "spec": {}}
    return observe(
        Inputs(
            kind=LAS,
            cr=cr,
            release_name="las-x",
            release_namespace="ns",
            releases=list(records),
            release_error=None,
            lookup=lambda ref: None,
            values={"a": 1},
            chart_version="0.1.0",
            now=NOW,
            helm_busy=busy,
        )
    )


def test_a_pending_install_written_an_hour_ago_is_stalled():
    """helm creates pending records with `createdAt` only; `modifiedAt` comes with an update."""
    secret = helm_secret(
        1, "pending-install", {"createdAt": str(int(HOUR_AGO))}, "2020-01-01T00:00:00Z"
    )
    rec = from_secret(secret)
    assert rec.modified_at == HOUR_AGO
    obs = observe_records(rec)
    assert obs.release.stalled
    assert decide(obs).action.kind is ActionKind.UNINSTALL_FAILED  # nothing worked before it


def test_a_pending_upgrade_an_hour_old_is_rolled_back_to_the_deployed_revision():
    deployed = from_secret(helm_secret(1, "deployed", {"modifiedAt": str(int(HOUR_AGO - 60))}, "x"))
    pending = from_secret(helm_secret(2, "pending-upgrade", {"createdAt": str(int(HOUR_AGO))}, "x"))
    obs = observe_records(deployed, pending)
    decision = decide(obs)
    assert decision.action.kind is ActionKind.ROLLBACK
    assert decision.action.rollback == (2, 1)
    assert decision.state is State.UNHEALTHY


def test_without_helm_labels_the_secrets_creation_time_counts():
    created = "2027-01-15T08:00:00Z"  # the API server's, for a record written by anyone
    rec = from_secret(helm_secret(1, "pending-upgrade", {}, created))
    assert rec.modified_at == datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp()


def test_modified_at_wins_over_created_at():
    labels = {"createdAt": "100", "modifiedAt": "200"}
    assert from_secret(helm_secret(1, "deployed", labels, "x")).modified_at == 200.0


def test_a_record_pending_while_our_own_helm_runs_is_never_stalled():
    rec = from_secret(helm_secret(1, "pending-install", {"createdAt": str(int(HOUR_AGO))}, "x"))
    obs = observe_records(rec, busy=True)
    assert not obs.release.stalled
    assert decide(obs).action.kind is ActionKind.WAIT


def test_a_fresh_pending_record_is_waited_for():
    fresh = str(int(NOW - STALL_AFTER / 2))
    rec = from_secret(helm_secret(1, "pending-install", {"createdAt": fresh}, "x"))
    assert decide(observe_records(rec)).action.kind is ActionKind.WAIT


def test_last_good_prefers_the_deployed_revision_below_the_latest():
    s, d, f = ReleaseStatus.SUPERSEDED, ReleaseStatus.DEPLOYED, ReleaseStatus.FAILED
    assert last_good([record(s, revision=1), record(d, revision=2), record(f, revision=3)]) == 2
    assert last_good([record(d, revision=1), record(s, revision=2), record(f, revision=3)]) == 1
    assert last_good([record(s, revision=1), record(f, revision=2)]) == 1
    assert last_good([record(f, revision=1)]) is None
    assert last_good([record(f, revision=1), record(f, revision=2)]) is None


def test_a_failed_upgrade_is_rolled_back_not_uninstalled():
    obs = healthy(
        release=release(record=record(ReleaseStatus.FAILED, "port taken", 2), last_good=1)
    )
    action = decide(obs).action
    assert action.kind is ActionKind.ROLLBACK
    assert action.rollback == (2, 1)
    assert "port taken" in action.reason


def test_an_interrupted_uninstall_is_finished_not_rolled_back():
    rec = from_secret(helm_secret(2, "uninstalling", {"createdAt": str(int(HOUR_AGO))}, "x"))
    older = from_secret(helm_secret(1, "superseded", {"createdAt": str(int(HOUR_AGO))}, "x"))
    obs = observe_records(older, rec)
    assert obs.release.last_good is None
    assert decide(obs).action.kind is ActionKind.UNINSTALL_FAILED


def test_release_failed_condition_names_the_interrupted_run():
    rec = from_secret(helm_secret(1, "pending-install", {"createdAt": str(int(HOUR_AGO))}, "x"))
    failed = {c.type: c for c in decide(observe_records(rec)).conditions}["ReleaseFailed"]
    assert failed.status is Status.TRUE
    assert "interrupted" in failed.message


def test_a_failed_rollback_is_uninstalled_and_installed_again():
    deployed = from_secret(helm_secret(1, "deployed", {"modifiedAt": "1"}, "x"))
    failed = helm_secret(2, "failed", {"modifiedAt": "2"}, "x")
    payload = json.loads(
        gzip.decompress(base64.b64decode(base64.b64decode(failed["data"]["release"])))
    )
    payload["info"]["rollback_revision"] = 1
    inner = base64.b64encode(gzip.compress(json.dumps(payload).encode()))
    failed["data"]["release"] = base64.b64encode(inner).decode()
    rolled = from_secret(failed)
    assert rolled.rollback_of == 1
    obs = observe_records(deployed, rolled)
    assert obs.release.last_good is None
    assert decide(obs).action.kind is ActionKind.UNINSTALL_FAILED


def test_the_release_watch_selects_only_records_with_the_operators_label():
    settings = kopf.OperatorSettings()
    label_selectors(settings)
    selector = settings.watching.label_selectors["v1", "secrets"]
    assert selector == "owner=helm,enclave.dev/managed-by=enclave-operator"
    ours = from_secret(
        helm_secret(1, "deployed", {"enclave.dev/managed-by": "enclave-operator"}, "x")
    )
    assert ours.ours
    assert not from_secret(helm_secret(1, "deployed", {}, "x")).ours
