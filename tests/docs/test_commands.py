"""Every shell command of README.md and docs/*.md is run here (the markers are described in markdown.py).

- Plain ```sh blocks run in a scratch directory whose `examples/`, `notebooks/`, `bench/`, `tests/`, `docs/`,
  `README.md` and `pyproject.toml` link to the checkout, with this venv's `bin` first on the PATH, so the files
  they write (plots, CSVs) land in the scratch directory. Each command must exit 0, or with the code its
  `# exits N` comment gives.
- `quick` blocks (the benchmarks) run the same way with small sizes appended: the suite proves the commands work,
  not the figures, which take minutes and depend on the machine.
- `background` blocks are started as a user would start them, on free ports: `127.0.0.1:55051`, the address the
  docs use, becomes the stack's, and `mn-deploy dev up` is given `--grpc` with it; `controller run` gets
  `MN_REDIS_URL` (a redis-server started here) and `MN_GRPC_ADDRESS` from the environment, and it and `agent worker`
  `MN_ORDER_KEY_FILE` (a key made here, as the docs' `openssl rand` makes one), as the docs say. The
  test waits until the gRPC API answers and every worker has registered. The `live` blocks that follow run against
  that stack, with `MN_GRPC_TARGET` set to it, and the stack is stopped (SIGTERM, as Ctrl-C) at the end.
- `setup` blocks are the README's one-liners `python3 -m venv .venv && . .venv/bin/activate && pip install -e SPEC
  && PAYLOAD`. Creating a venv and installing into it would take minutes and need the network, so they are
  checked in parts instead: `python3` is 3.11 or newer with `venv` and `ensurepip`; SPEC names this project (its
  pyproject.toml loads with the build backend and has the extras asked for), the venv running these tests holds an
  editable install of this checkout, and every requirement of SPEC is installed at a version that satisfies it;
  then PAYLOAD runs: `mn-deploy sim run ...` in a scratch directory (its output and plot are checked), and
  `python -m pytest -q` with `--collect-only` (it must collect the notebooks and these tests; the suite it names
  is the one running now).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

import grpc
import pytest
from packaging.requirements import Requirement
from PIL import Image

from backends.redis import Keys, connect
from backends.redis.keys import namespace_from_env
from backends.redis.server import LocalRedisServer, executable, free_port
from sim import load_scenario, load_sweep, run_scenario
from tests.dev_up_output import dev_up_lines
from tests.docs.markdown import ROOT, Block, Command, all_blocks, blocks, documents

DOCS_ADDRESS = "127.0.0.1:55051"
# The token file a `dev up` of the docs printed; a live block's `export` of it gets the stack's.
DOCS_STACK_DIR = "/tmp/mn-dev-1a2b3c4d"
"""The `dev up` working directory the docs show (its `grpc-token`, its `redis-url`); a live block gets the stack's."""
LINKED = ("README.md", "pyproject.toml", "examples", "notebooks", "bench", "tests", "docs")
BLOCK_TIMEOUT_S = int(os.environ.get("DOC_BLOCK_TIMEOUT_S", 240))
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
SETUP_STEPS = ["python3 -m venv .venv", ". .venv/bin/activate"]

BLOCKS = all_blocks()
OFFLINE = [b for b in BLOCKS if b.language == "sh" and b.mode in ("run", "quick")]
SETUP = [b for b in BLOCKS if b.mode == "setup"]
LIVE_FILES = [p for p in documents() if any(b.mode in ("background", "live") for b in blocks(p))]


def ids(blocks: list[Block]) -> list[str]:
    return [b.name for b in blocks]


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's shell after `. .venv/bin/activate`, with homes and temporary files kept under `tmp_path`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "MN_GRPC_TARGET",
            "MN_GRPC_ADDRESS",
            "MN_GRPC_AUTH_TOKEN",
            "MN_GRPC_AUTH_TOKEN_FILE",
            "MN_REDIS_URL",
            "MN_CLI_OUTPUT",
            "PYTEST_CURRENT_TEST",
        )
    }
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=sys.prefix,
        MPLBACKEND="Agg",
        NO_COLOR="1",
        COLUMNS="100",
        MN_HOME=str(tmp_path / "mn_home"),
        TMPDIR=str(tmp_path / "tmp"),
        **extra,
    )
    return env


def scratch(tmp_path: Path) -> Path:
    """A working directory that looks like the checkout for reading and keeps what commands write."""
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    return work


def script(commands: list[Command], address: str | None = None, token_file: str | None = None) -> str:
    """A bash script running each command in turn and stopping at the first unexpected exit code."""
    lines = []
    for command in commands:
        text = command.text if address is None else command.text.replace(DOCS_ADDRESS, address)
        text = text if token_file is None else text.replace(DOCS_STACK_DIR, str(Path(token_file).parent))
        lines.append(f"printf '%s\\n' {shlex.quote('$ ' + text)} >&2")
        lines.append(text)
        expected = command.exit_code
        lines.append(
            f'code=$?; if [ "$code" -ne {expected} ]; then '
            f'echo "doc-test: exit code $code, expected {expected}" >&2; exit 97; fi'
        )
    return "\n".join(lines) + "\n"


def run_block(block: Block, commands: list[Command], cwd: Path, env: dict[str, str], address: str | None = None) -> str:
    """Run the commands as one bash script; their stdout, after checking every exit code."""
    try:
        done = subprocess.run(
            ["bash", "-c", script(commands, address, env.get("MN_GRPC_AUTH_TOKEN_FILE"))],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        stdout, stderr = (_text(expired.stdout), _text(expired.stderr))
        raise AssertionError(f"{block.name}: timed out\n--- stdout\n{stdout}\n--- stderr\n{stderr}") from None
    assert done.returncode == 0, f"{block.name}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    return done.stdout


def _text(output: bytes | str | None) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    return text[-4000:]


def check_output(block: Block, stdout: str) -> None:
    if block.output is not None:
        assert stdout == block.output.body, f"{block.output.name}: the documented output differs"


# ---- plain and quick blocks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", OFFLINE, ids=ids(OFFLINE))
def test_commands_run(block: Block, tmp_path: Path) -> None:
    commands = block.commands()
    if block.mode == "quick":
        commands = [Command(f"{c.text} {block.args}", c.exit_code) for c in commands]
    if block.output is not None:
        assert len(commands) == 1, f"{block.name}: an output block documents a single command"
    stdout = run_block(block, commands, scratch(tmp_path), environment(tmp_path))
    check_output(block, stdout)


PYTHON = [b for b in BLOCKS if b.language == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=ids(PYTHON))
def test_python_blocks_run(block: Block, tmp_path: Path) -> None:
    work = scratch(tmp_path)
    (work / "block.py").write_text(block.body)
    done = subprocess.run(
        [sys.executable, "block.py"], cwd=work, env=environment(tmp_path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{block.name}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


SCENARIOS = [b for b in BLOCKS if b.mode == "scenario"]


@pytest.mark.parametrize("block", SCENARIOS, ids=ids(SCENARIOS))
def test_documented_scenarios_load_and_run(block: Block) -> None:
    result = run_scenario(load_scenario(json.loads(block.body)))
    assert result.deployments, block.name
    assert all(d["status"] == "successful" for d in result.deployments), block.name


SWEEPS = [b for b in BLOCKS if b.mode == "sweep"]


@pytest.mark.parametrize("block", SWEEPS, ids=ids(SWEEPS))
def test_documented_sweeps_load(block: Block) -> None:
    sweep = load_sweep(json.loads(block.body), name="documented", base=ROOT / "examples" / "sweeps")
    assert sweep.points, block.name


# ---- the README's set-up one-liners ------------------------------------------------------------------------------


def check_python3() -> None:
    """`python3 -m venv .venv` works: Python 3.11+ with venv and ensurepip (Debian ships them apart)."""
    code = "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"
    done = subprocess.run(["python3", "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"python3 must be 3.11+ with venv and ensurepip: {done.stderr}"


def check_installable(spec: str) -> None:
    """`pip install -e SPEC` names this project, and what it asks for is what this venv has."""
    path, _, extras = spec.partition("[")
    assert path == ".", spec
    wanted = {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    assert wanted <= set(optional), f"{spec}: no extra {sorted(wanted - set(optional))}"
    assert Requirement(f"python{project['requires-python']}").specifier.contains(
        ".".join(map(str, sys.version_info[:3]))
    )
    for package in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        assert (ROOT / package / "__init__.py").is_file(), f"the wheel lists {package}, which is not a package"
    installed = distribution(project["name"])
    direct = json.loads(installed.read_text("direct_url.json") or "{}")
    assert direct.get("dir_info", {}).get("editable"), "the venv's mn-deploy is not an editable install"
    assert direct.get("url") == ROOT.as_uri(), f"the venv's mn-deploy comes from {direct.get('url')}"
    requirements = list(project["dependencies"]) + [r for extra in sorted(wanted) for r in optional[extra]]
    for text in requirements:
        requirement = Requirement(text)
        if requirement.name == project["name"]:  # an extra that names others (`dev`): theirs are checked too
            requirements += [r for extra in sorted(requirement.extras) for r in optional[extra]]
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            pytest.fail(f"{spec}: {requirement.name} is not installed")
        assert requirement.specifier.contains(found, prereleases=True), f"{requirement}: {found} is installed"


def run_payload(block: Block, payload: str, tmp_path: Path) -> None:
    if payload.startswith("mn-deploy sim run "):
        work = scratch(tmp_path)
        stdout = run_block(block, [Command(payload)], work, environment(tmp_path))
        check_output(block, stdout)
        plot = shlex.split(payload)[shlex.split(payload).index("--plot") + 1]
        with Image.open(work / plot) as image:
            assert image.format == "PNG" and image.size == (1300, 1000)
    elif payload == "python -m pytest -q":
        command = [*shlex.split(payload), "--collect-only", "-p", "no:cacheprovider"]
        command[0] = sys.executable
        done = subprocess.run(command, cwd=ROOT, env=environment(tmp_path), capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        collected = done.stdout.splitlines()
        for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
            assert any(line.startswith(f"notebooks/{notebook.name}::") for line in collected), notebook.name
        assert any(line.startswith("tests/docs/test_commands.py::") for line in collected)
    else:
        pytest.fail(f"{block.name}: no check for the set-up payload {payload!r}; add one to run_payload")


@pytest.mark.parametrize("block", SETUP, ids=ids(SETUP))
def test_setup_one_liners(block: Block, tmp_path: Path) -> None:
    (command,) = block.commands()
    steps = [step.strip() for step in command.text.split("&&")]
    assert steps[:2] == SETUP_STEPS, steps
    install = shlex.split(steps[2])
    assert install[:3] == ["pip", "install", "-e"] and len(install) == 4, steps[2]
    assert len(steps) == 4, steps
    check_python3()
    check_installable(install[3])
    run_payload(block, steps[3], tmp_path)


def test_the_quickstart_plot_is_the_main_jobs() -> None:
    """The committed plot has the size `--plot` draws (the README command's own plot is checked above)."""
    with Image.open(ROOT / "docs" / "quickstart-timeline.png") as image:
        assert image.format == "PNG" and image.size == (1300, 1000)
    assert "](docs/quickstart-timeline.png)" in (ROOT / "README.md").read_text()


# ---- live stacks -------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """The processes one `background` block started, and where they serve."""

    address: str
    env: dict[str, str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    redis: LocalRedisServer | None = None

    def stop(self) -> None:
        """SIGTERM to each process group, as Ctrl-C in their terminals would; SIGKILL if one does not end."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.redis is not None:
            self.redis.stop()

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs)


def start(block: Block, tmp_path: Path, work: Path) -> Stack:
    if executable() is None:
        pytest.fail("the live documentation needs redis-server: apt-get install -y redis-server")
    address = f"127.0.0.1:{free_port()}"
    commands = [c.text.replace(DOCS_ADDRESS, address) for c in block.commands()]
    redis = None
    extra = {"MN_GRPC_TARGET": address, "MN_GRPC_ADDRESS": address}
    if any(not c.startswith("mn-deploy dev up") for c in commands):
        redis = LocalRedisServer(tmp_path / f"redis-{block.line}")
        redis.start()
        extra["MN_REDIS_URL"] = redis.url
        key = tmp_path / f"order-key-{block.line}"
        key.write_text(secrets.token_hex(32) + "\n")
        key.chmod(0o600)
        extra["MN_ORDER_KEY_FILE"] = str(key)
    stack = Stack(address, environment(tmp_path, **extra), redis=redis)
    try:
        for i, text in enumerate(commands):
            dev_up = text.startswith("mn-deploy dev up")
            if dev_up and "--grpc" not in text:
                text += f" --grpc {address}"
            log = tmp_path / f"block-{block.line}-{i}.log"
            stack.logs.append(log)
            with log.open("w") as stderr:
                stack.processes.append(
                    subprocess.Popen(
                        ["bash", "-c", f"exec {text}"],
                        cwd=work,
                        env=stack.env,
                        stdout=subprocess.PIPE if dev_up else stderr,
                        stderr=stderr,
                        text=True,
                        start_new_session=True,
                    )
                )
            if dev_up:  # it prints its lines once every process is ready, or exits
                printed = dev_up_lines(stack.processes[-1].stdout)
                assert printed.get("grpc") == address, f"{block.name}: {printed}\n{stack.tail()}"
                stack.env["MN_REDIS_URL"] = Path(printed["redis-url-file"]).read_text().strip()
                stack.env["MN_GRPC_AUTH_TOKEN_FILE"] = printed["token-file"]  # as the README has users export it
        wait_ready(stack, sum("agent worker" in c for c in commands), block)
    except BaseException:
        stack.stop()
        raise
    return stack


def wait_ready(stack: Stack, workers: int, block: Block) -> None:
    """Until the gRPC API answers and `workers` nodes have a live heartbeat (polled every 50 ms)."""
    with grpc.insecure_channel(stack.address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            pytest.fail(f"{block.name}: nothing served {stack.address}\n{stack.tail()}")
    client = connect(stack.env["MN_REDIS_URL"])
    keys = Keys(namespace_from_env())
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while sum(bool(client.exists(keys.node_heartbeat(n))) for n in client.smembers(keys.nodes)) < workers:
            assert time.monotonic() < deadline, f"{block.name}: {workers} workers did not register\n{stack.tail()}"
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def stacks() -> Iterator[list[Stack]]:
    """The stack a test has running; stopped at the end whatever happened."""
    started: list[Stack] = []
    yield started
    for stack in started:
        stack.stop()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", LIVE_FILES, ids=[str(p.relative_to(ROOT)) for p in LIVE_FILES])
def test_live_commands(path: Path, tmp_path: Path, stacks: list[Stack]) -> None:
    """The file's blocks in order: each `background` block replaces the stack, each `live` block runs on it."""
    work = scratch(tmp_path)
    for block in blocks(path):
        if block.mode == "background":
            if stacks:
                stacks.pop().stop()
            stacks.append(start(block, tmp_path, work))
        elif block.mode == "live":
            assert stacks, f"{block.name}: a live block needs a background block before it"
            stack = stacks[-1]
            try:
                run_block(block, block.commands(), work, stack.env, stack.address)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{stack.tail()}") from None


# ---- every block is accounted for --------------------------------------------------------------------------------

KNOWN = {
    "sh": ("run", "setup", "quick", "background", "live"),
    "text": ("", "output"),
    "json": ("", "scenario", "sweep"),
    "python": ("",),
}


def test_every_block_is_checked_or_plain_text() -> None:
    """A block with an unknown language or marker would silently escape the tests."""
    for block in BLOCKS:
        assert block.language in KNOWN, f"{block.name}: a ```{block.language} block; use sh, text, json or python"
        assert block.mode in KNOWN[block.language], f"{block.name}: marker {block.mode!r} on a {block.language} block"
    assert SETUP and LIVE_FILES and OFFLINE
