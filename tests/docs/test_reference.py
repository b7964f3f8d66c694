"""The reference documents agree with the code: every CLI option is in docs/cli.md and every option documented
there exists; every test that docs/rules.md cites exists and every rule cites one; relative links resolve."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from mn_deploy.cli import main
from tests.docs.markdown import ROOT, documents

CLI_DOC = ROOT / "docs" / "cli.md"
RULES_DOC = ROOT / "docs" / "rules.md"


def commands(group: click.Group, path: tuple[str, ...] = ("mn-deploy",)) -> Iterator[tuple[str, click.Command]]:
    context = click.Context(group)  # list_commands and get_command: the live groups are attached when asked for
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


COMMANDS = dict(commands(main))
SHARED = {"--target", "--tls-ca", "--json"}  # documented once, for every `mn-deploy deployment` command
ON_REDIS = {  # reads Redis (`--redis`), not the controller: no `--target`
    "mn-deploy deployment logs",
    "mn-deploy deployment plan",
    "mn-deploy deployment export",
    "mn-deploy deployment plot",
}


def section(text: str, title: str) -> str:
    """From the heading that names `title` in backticks to the next heading of any level."""
    match = re.search(rf"^#+ .*`{re.escape(title)}`.*$", text, re.M)
    assert match, f"docs/cli.md has no heading for `{title}`"
    following = re.search(r"^#", text[match.end() :], re.M)
    return text[match.end() : match.end() + following.start() if following else None]


def long_options(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)} - {
        "-h",
        "--help",
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_documented_and_every_documented_option_exists(name: str) -> None:
    text = CLI_DOC.read_text()
    title = name
    if name.split()[-1] in ("resume", "fail"):  # documented together with pause
        title = "mn-deploy deployment pause"
    documented = section(text, title)
    options = long_options(COMMANDS[name])
    if name.startswith("mn-deploy deployment "):
        options -= SHARED
    missing = sorted(o for o in options if f"`{o}" not in documented)
    assert not missing, f"{name}: undocumented options {missing}"
    rows = set(re.findall(r"^\| `(--[a-z-]+)", documented, re.M))
    assert rows <= options | SHARED, f"{name}: documented options that do not exist: {sorted(rows - options)}"


def test_the_shared_deployment_options_are_documented_once() -> None:
    overview = CLI_DOC.read_text().split("## Operating deployments", 1)[1].split("\n### ", 1)[0]
    assert all(f"| `{option}" in overview for option in SHARED)
    for name, command in COMMANDS.items():
        if name.startswith("mn-deploy deployment ") and name not in ON_REDIS:
            assert long_options(command) >= SHARED, name


def suite_tests() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.M))
    return names


def test_every_test_the_rules_cite_exists() -> None:
    cited = set(re.findall(r"`(?:[\w./]+::)?(test_\w+)`", RULES_DOC.read_text()))
    assert cited, "docs/rules.md cites no test"
    missing = sorted(cited - suite_tests())
    assert not missing, f"docs/rules.md cites tests that do not exist: {missing}"


@pytest.mark.parametrize("rule", range(1, 17))
def test_every_rule_cites_its_tests(rule: int) -> None:
    text = RULES_DOC.read_text()
    body = re.search(rf"^## R{rule} .*?(?=^## )", text, re.M | re.S)
    assert body, f"docs/rules.md has no section R{rule}"
    assert re.search(rf"`(?:[\w./]+::)?test_r{rule}_\w+`", body.group(0)), f"R{rule} cites none of its own tests"


def links(path: Path) -> Iterator[str]:
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("path", documents(), ids=[str(p.relative_to(ROOT)) for p in documents()])
def test_relative_links_resolve(path: Path) -> None:
    for target in links(path):
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.exists(), f"{path.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{path.name}: no heading #{anchor} in {file or path.name}"
