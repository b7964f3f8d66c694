"""Odd paths in a bundle directory: links (wherever they point), loops, what is no file, and odd names. Each is
refused by the CLI in one line before anything is sent, or sent under the path the controller and a worker take."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.protocol.bundles import MAX_NAME_BYTES
from mn_deploy.bundle_reader import BundleError, read_bundle
from tests.cli.conftest import write_bundle

MANIFEST = {"graph_id": "app", "nodes": []}


def refusal(path: Path) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(path)
    return caught.value.message


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("passwd", "/etc/passwd"),  # a file outside the bundle
        ("etc", "/etc"),  # a directory outside it
        ("up", "../manifest.json"),  # the bundle's own manifest, beside the payloads
        ("alias.json", "real/a.json"),  # a file inside: copied in instead, so what is sent is what is there
        ("same", "real"),  # a directory inside
        ("loop", "loop"),  # a link to itself
        ("dangling", "nowhere"),
    ],
)
def test_a_link_anywhere_under_the_payloads_is_refused_naming_where_it_points(
    tmp_path: Path, name: str, target: str
) -> None:
    bundle = write_bundle(tmp_path / "app", MANIFEST, {"real/a.json": b"1"})
    (bundle / "payloads" / name).symlink_to(target)

    assert refusal(bundle) == f"Unsafe payload path: {name} -> {target}"


def test_a_loop_of_two_links_is_refused(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", MANIFEST, {"d/a.json": b"1"})
    (bundle / "payloads" / "d" / "ping").symlink_to("pong")
    (bundle / "payloads" / "d" / "pong").symlink_to("ping")

    assert refusal(bundle) == "Unsafe payload path: d/ping -> pong"


def test_a_payloads_directory_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = write_bundle(tmp_path / "elsewhere", MANIFEST, {"a.json": b"1"})
    bundle = write_bundle(tmp_path / "app", MANIFEST)
    (bundle / "payloads").symlink_to(elsewhere / "payloads", target_is_directory=True)

    assert refusal(bundle) == f"Unsafe payload path: payloads -> {elsewhere / 'payloads'}"


def test_what_is_neither_a_file_nor_a_directory_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """Reading a FIFO would wait for a writer forever."""
    bundle = write_bundle(tmp_path / "app", MANIFEST, {"a.json": b"1"})
    os.mkfifo(bundle / "payloads" / "pipe")

    assert refusal(bundle) == "Unsafe payload path: pipe (neither a file nor a directory)"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("line\nbreak", 'Unsafe payload path: "line\\nbreak" (holds a control character)'),
        ("bell\x07", 'Unsafe payload path: "bell\\u0007" (holds a control character)'),
        ("esc\x1b[2J", 'Unsafe payload path: "esc\\u001b[2J" (holds a control character)'),
    ],
    ids=["newline", "bell", "escape"],
)
def test_a_name_with_a_control_character_is_refused_in_one_line(tmp_path: Path, name: str, message: str) -> None:
    bundle = write_bundle(tmp_path / "app", MANIFEST, {name: b"1"})

    assert refusal(bundle) == message


def test_a_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", MANIFEST)
    (bundle / "payloads").mkdir()
    with open(os.fsencode(bundle / "payloads") + b"/\xff.bin", "wb") as file:
        file.write(b"1")

    assert refusal(bundle) == 'Unsafe payload path: "\\udcff.bin" (not UTF-8 text)'


def test_a_path_too_deep_for_a_worker_is_refused(tmp_path: Path) -> None:
    deep = "/".join(["d" * 200] * 6) + "/a.json"
    bundle = write_bundle(tmp_path / "app", MANIFEST, {deep: b"1"})

    assert refusal(bundle).endswith("(longer than 1024 bytes)")


@pytest.mark.parametrize("name", ["...", "....", ". .", "-", "~", " lead", "é", "n" * MAX_NAME_BYTES, ".hidden"])
def test_odd_names_a_worker_can_write_are_sent_as_they_are(tmp_path: Path, name: str) -> None:
    """Names of dots only (but `.` and `..`, which no directory lists), dashes, spaces and the longest name."""
    bundle = write_bundle(tmp_path / "app", MANIFEST, {f"d/{name}": b"1"})

    assert read_bundle(bundle).payloads == {f"d/{name}": b"1"}
