"""The README's configuration reference is generated from the option tables."""

from __future__ import annotations

from pathlib import Path

from relaybit.reference import END, START, render

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_reference_matches_the_option_tables() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == render().strip(), (
        "README reference is stale: run python -m relaybit.reference --update README.md"
    )


def test_readme_documents_every_builtin_plugin() -> None:
    from relaybit.plugins import registry

    text = README.read_text(encoding="utf-8")
    for kind, names in registry.BUILTIN.items():
        for name in names:
            assert f"### {kind} `{name}`" in text


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert "relaybit --demo" in text
    assert "bash scripts/test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test" in ci
