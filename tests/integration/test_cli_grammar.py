"""One CLI grammar: the same flag means the same thing in every command, inputs are positional (with
``--input`` kept), ``--force`` replaces outputs, ``--json`` prints a parseable result, completion installs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import typer

from seekforge.cli import app
from tests.conftest import make_tabular
from tests.integration.cli import seekforge

#: Commands that print no result table: ``init`` prints a recipe, ``serve`` and ``studio`` serve,
#: ``completion`` a script, ``schema`` a JSON schema.
NO_RESULT = {"init", "serve", "studio", "completion", "schema"}


def _commands() -> dict[str, Any]:
    """Every command by its full name, from the click tree typer builds."""
    found: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, f"{prefix}{name} ")
            else:
                found[prefix + name] = command

    walk(typer.main.get_command(app), "")
    return found


def test_the_same_flag_means_the_same_thing_everywhere() -> None:
    commands = _commands()
    assert {"run", "train", "evaluate", "data profile", "data validate", "datasets list", "env"} <= set(commands)
    short: dict[str, set[str]] = {}
    for name, command in commands.items():
        for param in command.params:
            longest = max(param.opts, key=len)
            for opt in param.opts + param.secondary_opts:
                if len(opt) == 2:
                    short.setdefault(opt, set()).add(longest)
        options = {opt for param in command.params for opt in param.opts}
        if name not in NO_RESULT:
            assert "--json" in options, f"seekforge {name} has no --json"
        assert "--overwrite" not in options or "--force" in options, name
    meanings = {opt: longs for opt, longs in short.items() if len(longs) > 1}
    assert not meanings, f"a short flag with several meanings: {meanings}"
    assert short["-s"] == {"--set"} and short["-o"] == {"--output"} and short["-i"] == {"--input"}


def test_data_commands_take_their_input_as_an_argument_or_as_input() -> None:
    for name, command in _commands().items():
        if name.startswith("data "):
            arguments = [p for p in command.params if p.param_type_name == "argument"]
            options = {opt for param in command.params for opt in param.opts}
            assert len(arguments) == 1 and "--input" in options, name


def test_every_result_prints_as_json(tmp_path: Path, served_package: Path) -> None:
    make_tabular(40, seed=3).to_csv(tmp_path / "new.csv", index=False)
    package = tmp_path / "pkg"
    shutil.copytree(served_package, package)
    recipe = package / "recipe.yaml"

    def run(*args: str, code: int = 0) -> object:
        proc = seekforge(*args, "--json", cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return json.loads(proc.stdout)  # stdout holds the JSON and nothing else

    assert run("validate", str(recipe), "--no-data")["ok"] is True
    assert run("evaluate", str(package), "new.csv")["metrics"]["rows"] == 40
    assert run("predict", str(package), "new.csv", "-o", "p.csv", "--backend", "torch") == {
        "output": "p.csv", "rows": 40, "backend": "torch",
    }  # fmt: skip
    bench = run("bench", str(package), "--batch", "1", "--seconds", "0.1", "--rounds", "1", "--backend", "torch")
    assert bench["rows"][0]["backend"] == "torch" and bench["hardware"]["cores"] >= 1
    optimized = run("optimize", str(package), "-o", "fast", "--seconds", "0.1")
    assert optimized["selected"] and "torch" in {c["backend"] for c in optimized["candidates"]}
    assert {d["name"] for d in run("datasets", "list")} >= {"digits", "breast_cancer"}
    assert run("env")["hardware"]["isa"]
    profile = run("data", "profile", "new.csv", "-o", "profile/report.html")
    assert profile["rows"] == 40 and (tmp_path / "profile" / "report.json").is_file()


def test_an_output_that_exists_needs_force(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("keep me")
    refused = seekforge("init", "--output", "r.yaml", cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr and (tmp_path / "r.yaml").read_text() == "keep me"
    seekforge("init", "--output", "r.yaml", "--force", cwd=tmp_path, check=True)
    assert "features:" in (tmp_path / "r.yaml").read_text()


def test_completion_scripts_complete_commands_and_options(tmp_path: Path) -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --command seekforge")):
        script = seekforge("completion", shell, cwd=tmp_path)
        assert script.returncode == 0 and "_SEEKFORGE_COMPLETE" in script.stdout and marker in script.stdout
    assert seekforge("completion", "tcsh", cwd=tmp_path).returncode == 2
    env = {"_SEEKFORGE_COMPLETE": "complete_bash", "COMP_WORDS": "seekforge data profile --la", "COMP_CWORD": "3"}
    assert "--label" in seekforge(cwd=tmp_path, env=env).stdout.split()
    env = {"_SEEKFORGE_COMPLETE": "complete_bash", "COMP_WORDS": "seekforge da", "COMP_CWORD": "1"}
    assert set(seekforge(cwd=tmp_path, env=env).stdout.split()) == {"data", "datasets"}
