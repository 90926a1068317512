"""The command line's own parsing: durations, domains, and usage errors as one line."""

from __future__ import annotations

import sys

import pytest
import typer

from enclave_operator.cli import main as cli_main
from enclave_operator.cli.common import seconds
from enclave_operator.cli.install import _domains


@pytest.mark.parametrize(
    ("text", "expected"),
    [("300", 300), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5", 1.5), (60.0, 60)],
)
def test_durations(text, expected):
    assert seconds(text) == expected


@pytest.mark.parametrize("bad", ["", "soon", "5 minutes", "-1", "1d"])
def test_bad_durations(bad):
    with pytest.raises(typer.BadParameter):
        seconds(bad)


def test_domains_repeat_or_comma_separated_once_each():
    assert _domains(["a.example", "b.example,c.example", " a.example ,", ""]) == (
        "a.example",
        "b.example",
        "c.example",
    )
    assert _domains(None) == ()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["install", "--bogus"],
            "error: No such option: --bogus (see `enclavectl install --help`)",
        ),
        (["install", "--timeout", "soon"], "error: Invalid value for '--timeout': 'soon' is not"),
        (["status", "-o", "xml"], "error: Invalid value for '-o' / '--output'"),
        (["frobnicate"], "error: No such command 'frobnicate'."),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(monkeypatch, capsys, argv, expected):
    monkeypatch.setattr(sys, "argv", ["enclavectl", *argv])
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(expected)
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_a_good_command_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["enclavectl", "version"])
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip()


def test_no_kubeconfig_is_one_line_with_exit_1(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(
        sys, "argv", ["enclavectl", "status", "--kubeconfig", str(tmp_path / "none")]
    )
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no kubeconfig at {tmp_path / 'none'}")
    assert err.count("\n") == 1
