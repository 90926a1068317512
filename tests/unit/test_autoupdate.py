"""autoUpdate's pure parts: which tag to move to, image references, pull-secret credentials,
the AutoUpdate condition and the check interval's backoff."""

from __future__ import annotations

import base64
import json

import pytest

from enclave_operator.autoupdate import plan
from enclave_operator.autoupdate.pulls import pull_failure
from enclave_operator.autoupdate.pulls import verdict as pull_verdict
from enclave_operator.autoupdate.reference import (
    DOCKER_HUB,
    CredentialsError,
    Reference,
    credentials,
    dockerconfig_of,
    parse_reference,
)
from enclave_operator.autoupdate.versions import Version, choose, parse
from enclave_operator.reconcile.model import Decision, State
from enclave_operator.reconcile.report import KEPT_CONDITIONS, desired_status

LOCAL = "10.200.0.1:5443"
TAGS = ["0.1.0", "0.1.1", "0.2.0", "1.0.0", "latest", "0.3.0-rc.1", "v0.9.9", "0.2", "sha-1234"]


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("0.1.0", Version(0, 1, 0)),
        ("10.20.30", Version(10, 20, 30)),
        ("1.0.0-rc.1", Version(1, 0, 0, "rc.1")),
        ("1.0.0+build.5", Version(1, 0, 0)),
        ("latest", None),
        ("v1.2.3", None),
        ("1.2", None),
        ("01.2.3", None),
        ("1.2.3-", None),
    ],
)
def test_parse_semantic_versions_only(tag, expected):
    assert parse(tag) == expected


@pytest.mark.parametrize(
    ("current", "scope", "expected"),
    [
        ("0.1.0", "Minor", "0.2.0"),  # same major: 1.0.0 and latest are not taken
        ("0.1.0", "Patch", "0.1.1"),
        ("0.1.0", "Major", "1.0.0"),
        ("0.2.0", "Minor", None),
        ("1.0.0", "Major", None),
    ],
)
def test_choose_newest_within_scope(current, scope, expected):
    choice = choose(current, TAGS, scope)
    assert not isinstance(choice, str)
    assert choice.tag == expected
    if expected:
        assert choice.reason == f"from {current} to {expected}"
    else:
        assert choice.reason.startswith(f"{current} is the newest within")


def test_choose_never_moves_down_or_to_a_prerelease():
    assert choose("0.3.0", ["0.2.9", "0.3.0", "0.3.1-rc.1"], "Minor").tag is None
    # from a pre-release, the release of the same version is newer
    assert choose("0.3.0-rc.1", ["0.3.0-rc.2", "0.3.0"], "Minor").tag == "0.3.0"


def test_choose_ignores_build_metadata_duplicates():
    assert choose("1.2.3", ["1.2.3+b2"], "Minor").tag is None
    assert choose("1.2.3", ["1.2.4+b2", "1.2.4"], "Minor").tag == "1.2.4"


def test_choose_compares_numerically_not_as_text():
    assert choose("0.9.0", ["0.10.0", "0.9.1"], "Minor").tag == "0.10.0"


def test_running_tag_that_is_no_version_is_reported():
    why = choose("latest", TAGS, "Minor")
    assert isinstance(why, str)
    assert "'latest' is not a semantic version" in why


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("enclave-operator:0.1.0", Reference(DOCKER_HUB, "library/enclave-operator", "0.1.0")),
        ("docker.io/org/app:1.0.0", Reference(DOCKER_HUB, "org/app", "1.0.0")),
        ("10.200.0.1:5443/enclave-operator:0.1.0", Reference(LOCAL, "enclave-operator", "0.1.0")),
        ("localhost/a/b:2.0.0", Reference("localhost", "a/b", "2.0.0")),
        ("reg.example/a/b:1.0.0", Reference("reg.example", "a/b", "1.0.0")),
        ("10.200.0.1:5443/enclave-operator", None),
        ("app@sha256:abcd", None),
    ],
)  # fmt: skip
def test_parse_reference(image, expected):
    assert parse_reference(image) == expected


def test_with_tag_keeps_what_the_user_wrote():
    ref = parse_reference("10.200.0.1:5443/enclave-operator:0.1.0")
    assert ref is not None
    assert ref.with_tag("0.1.1", "10.200.0.1:5443/enclave-operator:0.1.0") == (
        "10.200.0.1:5443/enclave-operator:0.1.1"
    )


def _secret(doc: object) -> dict[str, object]:
    raw = base64.b64encode(json.dumps(doc).encode()).decode()
    return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": raw}}


def test_credentials_by_host_from_auth_or_username():
    auth = base64.b64encode(b"puller:s3cret:with:colons").decode()
    auths = {
        "https://reg.example/v2/": {"auth": auth},
        "other:5000": {"username": "u", "password": "p"},
    }
    doc = dockerconfig_of(_secret({"auths": auths}))
    assert credentials(doc, "reg.example") == ("puller", "s3cret:with:colons")
    assert credentials(doc, "other:5000") == ("u", "p")
    assert credentials(doc, "third.example") is None
    hub = dockerconfig_of(_secret({"auths": {"https://index.docker.io/v1/": {"auth": auth}}}))
    assert credentials(hub, DOCKER_HUB) == ("puller", "s3cret:with:colons")


def test_unreadable_pull_secrets_say_why():
    with pytest.raises(CredentialsError, match=r"no \.dockerconfigjson"):
        dockerconfig_of({"data": {}})
    with pytest.raises(CredentialsError, match="not JSON"):
        dockerconfig_of({"data": {".dockerconfigjson": base64.b64encode(b"{").decode()}})
    with pytest.raises(CredentialsError, match="auths"):
        credentials({"auths": {"r": {"auth": "!!"}}}, "r")


def test_an_update_is_said_from_to_and_kept_while_it_is_the_newest():
    moved = plan.after_choice(choose("0.1.0", ["0.1.1"]), "r/app:0.1.1", None)
    assert (moved.status, moved.reason, moved.message, moved.image) == (
        "True",
        "Updated",
        "from 0.1.0 to 0.1.1",
        "r/app:0.1.1",
    )
    later = plan.after_choice(choose("0.1.1", ["0.1.1"]), None, moved.condition())
    assert (later.reason, later.message, later.image) == ("Updated", "from 0.1.0 to 0.1.1", None)
    fresh = plan.after_choice(choose("0.1.1", ["0.1.1"]), None, None)
    assert (fresh.reason, fresh.message) == ("UpToDate", "0.1.1 is the newest within 0.x")
    bad = plan.after_choice(choose("latest", ["0.1.1"]), None, None)
    assert (bad.status, bad.reason) == ("False", "NotSemanticVersion")


def test_next_check_backs_off_from_the_interval_up_to_ten_minutes():
    assert plan.next_check(30, 0) == 30
    assert [plan.next_check(30, n) for n in (1, 2, 3, 4, 5, 6)] == [60, 120, 240, 480, 600, 600]
    assert plan.next_check(3600, 3) == 3600  # never more often than asked


def test_the_service_controller_keeps_the_autoupdate_condition():
    assert plan.CONDITION in KEPT_CONDITIONS
    mine = {"type": plan.CONDITION, "status": "False", "reason": "RegistryUnreachable"}
    current = {"conditions": [{"type": "IsHealthy", "status": "True"}, mine]}
    status = desired_status(current, Decision((), State.HEALTHY, None), 1, "now")
    assert mine in status["conditions"]


def _pod(reason: str, secrets: list[str]) -> dict[str, object]:
    return {
        "metadata": {"name": "las-x-abcde"},
        "spec": {"nodeName": "enclave-node", "imagePullSecrets": [{"name": s} for s in secrets]},
        "status": {
            "containerStatuses": [
                {
                    "image": "10.200.0.1:5000/app:0.1.0",
                    "state": {"waiting": {"reason": reason, "message": "401 Unauthorized"}},
                }
            ]
        },
    }


def test_a_failed_pull_names_pod_node_image_secret_and_the_kubelets_message():
    why = pull_failure(_pod("ErrImagePull", ["valid"]))
    assert why == (
        "pod las-x-abcde on enclave-node cannot pull 10.200.0.1:5000/app:0.1.0 with"
        " imagePullSecret valid: ErrImagePull: 401 Unauthorized"
    )
    assert "no imagePullSecret" in str(pull_failure(_pod("ImagePullBackOff", [])))
    assert pull_failure(_pod("ContainerCreating", ["valid"])) is None
    assert pull_verdict({}) == ("True", "Pulled", "every pod has its image")
    status, reason, message = pull_verdict({"b": "second", "a": "first"})
    assert (status, reason, message) == ("False", "PullFailed", "first (and 1 more pods)")
    assert "ImagePulled" in KEPT_CONDITIONS
