"""The README stays a short entry point, and names every command the CLI has."""
from pathlib import Path

from prunelab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_short_and_names_every_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 15_000
    commands = build_parser()._subparsers._group_actions[0].choices
    missing = [name for name in commands if f"prunelab {name}" not in readme]
    assert not missing, f"commands the README does not show: {missing}"


def test_every_docs_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [page.name for page in (ROOT / "docs").glob("*.md")]
    assert pages and all(page in nav for page in pages)
