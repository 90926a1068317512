"""The shipped alert rules through promtool: valid rules, and unit tests in which every alert
fires on the series that should trigger it and stays silent otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.prometheus.promtool import RULE_TESTS, RULES, promtool, rules, write_plain


def check(directory: Path, source: Path = RULES) -> tuple[int, str]:
    write_plain(directory, source)
    done = promtool("check", "rules", "alerts.rules.yaml", cwd=directory)
    return done.returncode, done.stdout + done.stderr


def unit_tests(directory: Path, source: Path = RULES) -> tuple[int, str]:
    write_plain(directory, source)
    shutil.copy(RULE_TESTS, directory / RULE_TESTS.name)
    done = promtool("test", "rules", RULE_TESTS.name, cwd=directory)
    return done.returncode, done.stdout + done.stderr


def test_promtool_accepts_the_shipped_rules(tmp_path):
    code, out = check(tmp_path)
    assert code == 0, out
    assert f"SUCCESS: {len(rules())} rules found" in out, out


def test_every_alert_fires_when_it_should_and_only_then(tmp_path):
    code, out = unit_tests(tmp_path)
    assert code == 0, out
    assert "SUCCESS" in out, out


def test_every_alert_has_a_firing_and_a_silent_case():
    """A new alert without its rule tests fails here rather than going unchecked."""
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for rule in rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} never expected to fire"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} never expected silent"


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = RULES.read_text()
    assert old in text
    source = tmp_path / "broken" / "alerts.yaml"
    source.parent.mkdir()
    source.write_text(text.replace(old, new, 1))
    return source


def test_a_rule_that_is_not_promql_fails_the_check(tmp_path):
    source = broken(
        tmp_path, "enclave_las_las_replica_alert > 0", "enclave_las_las_replica_alert >"
    )
    code, out = check(tmp_path, source)
    assert code != 0
    assert "EnclaveLASReplicaMissing" in out or "parse error" in out, out


def test_a_rule_that_fires_on_healthy_series_fails_the_unit_tests(tmp_path):
    source = broken(
        tmp_path, "enclave_las_las_replica_alert > 0", "enclave_las_las_replica_alert >= 0"
    )
    assert check(tmp_path, source)[0] == 0  # valid PromQL, wrong meaning
    code, out = unit_tests(tmp_path, source)
    assert code != 0
    assert 'name="healthy"' in out, out
