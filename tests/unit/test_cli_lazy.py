"""The lazy entry point mounts, for each top-level command, exactly the groups it needs."""

from __future__ import annotations

import subprocess
import sys

import typer.main

from node.cli import main


def _top_level(app: typer.Typer) -> set[str]:
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_of_the_full_app_is_in_the_table() -> None:
    assert _top_level(main.app) == set(main.COMMANDS)


def test_each_command_is_mounted_by_the_groups_listed_for_it() -> None:
    for command, groups in main.COMMANDS.items():
        mounted = typer.main.get_command(main.build_app(groups)).commands  # type: ignore[attr-defined]
        assert command in mounted, f"{command} is not mounted by {groups}"
        full = typer.main.get_command(main.app).commands[command]  # type: ignore[attr-defined]
        if hasattr(full, "commands"):  # a group: the same subcommands, none missing
            assert set(mounted[command].commands) == set(full.commands), command


def test_help_and_unknown_commands_mount_everything() -> None:
    assert main._groups_for(["--help"]) is None
    assert main._groups_for([]) is None
    assert main._groups_for(["no-such-command"]) is None
    assert main._groups_for(["match", "document", "--number", "X"]) == main.COMMANDS["match"]


def test_a_command_runs_without_importing_the_other_groups() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['enlace', 'doctor', '--help']\n"
        "from node.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('node.cli.') and m.endswith('_cmd')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Check clock skew" in out.stdout  # doctor's own help, not the root's
    assert out.stdout.strip().splitlines()[-1] == "['node.cli.doctor_cmd']"
