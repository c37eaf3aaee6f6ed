"""The documentation site (docs/, mkdocs.yml) and the README's front page.

The key tables of docs/reference.md and of each plugin's page, and the plugin
entries of mkdocs.yml's nav, are generated from the option tables
(relaybit.reference); these tests keep them in step with the code, build the
site with ``mkdocs build --strict`` (no broken link or anchor, no page left
out of the nav), and hold the README to a front page that keeps the two
commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from relaybit import reference
from relaybit.plugins import registry

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
UPDATE = "run: python -m relaybit.reference --update"
#: the two commands, character for character, as the README and the docs give them
DEMO_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[demo]' && .venv/bin/relaybit --demo"
)
TEST_COMMAND = "bash scripts/test"


def test_generated_blocks_match_the_option_tables() -> None:
    stale = []
    for path, (start, end, text) in reference.expected(REPO).items():
        assert path.exists(), f"{path.relative_to(REPO)} is missing; {UPDATE}"
        current = path.read_text(encoding="utf-8")
        assert start in current and end in current, f"{path} lost its markers"
        if reference.block(current, start, end).strip() != text.strip():
            stale.append(str(path.relative_to(REPO)))
    assert not stale, f"stale generated docs {stale}; {UPDATE}"


def test_every_builtin_plugin_has_a_page_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    index = (DOCS / "plugins" / "index.md").read_text(encoding="utf-8")
    for kind, names in registry.BUILTIN.items():
        for name in names:
            page = reference.plugin_page(kind, name)
            text = (DOCS / page).read_text(encoding="utf-8")
            assert text.startswith(f"# {kind} `{name}`\n")
            assert f"- {name}: {page.as_posix()}" in nav
            assert f"]({page.relative_to('plugins').as_posix()})" in index


def test_every_plugin_key_is_documented_on_its_page() -> None:
    for kind, name, cls in reference.builtin_plugins():
        text = (DOCS / reference.plugin_page(kind, name)).read_text(encoding="utf-8")
        common = reference._COMMON[kind].names()
        for key in cls.options.names():
            if key not in common and not key.startswith("net."):
                assert f"| `{key}` |" in text, (kind, name, key)


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """No broken link or anchor, no page outside the nav, no unknown option."""
    try:
        import material  # noqa: F401  (mkdocs-material, in the test extra)
    except ImportError:  # pragma: no cover - an old virtualenv
        pytest.fail("mkdocs-material is missing: pip install -e '.[test]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "plugins" / "outputs" / "forward" / "index.html").exists()
    assert (tmp_path / "site" / "upstream" / "index.html").exists()


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert DEMO_COMMAND in text
    assert TEST_COMMAND in text
    assert "relaybit --demo" in text
    started = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    assert DEMO_COMMAND in started and TEST_COMMAND in started
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in ci


def test_readme_is_a_front_page_that_links_into_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 10 * 1024
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    for link in local:
        assert (REPO / link).exists(), f"README links to a missing {link}"
    pages = {link for link in local if link.startswith("docs/")}
    for page in ("getting-started", "upstream", "monitoring", "library", "migrating"):
        assert f"docs/{page}.md" in pages
    assert "docs/compatibility.md" in pages and "docs/plugins/index.md" in pages
