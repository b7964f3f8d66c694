"""Reading a bundle from disk: what is sent, and what is refused before anything is."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.protocol.sizes import MAX_BUNDLE_BYTES, MAX_MANIFEST_BYTES
from mn_deploy.bundle_reader import BundleError, read_bundle
from tests.awkward import awkward_values, unfit
from tests.cli.conftest import write_bundle

MANIFEST = {"graph_id": "app", "nodes": []}


def refusal(path: Path) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(path)
    return caught.value.message


def test_a_directory_is_its_manifest_text_and_every_payload_by_posix_path(tmp_path: Path) -> None:
    text = json.dumps(MANIFEST, indent=4)
    bundle = write_bundle(tmp_path / "app", text, {"a.json": b"1", "deep/er/b.bin": b"\x00"})

    read = read_bundle(bundle)

    assert read.manifest_json == text
    assert read.payloads == {"a.json": b"1", "deep/er/b.bin": b"\x00"}


def test_a_manifest_file_takes_the_payloads_beside_it(tmp_path: Path) -> None:
    write_bundle(tmp_path, MANIFEST, {"a.json": b"1"})
    (tmp_path / "manifest.json").rename(tmp_path / "v2.json")

    assert read_bundle(tmp_path / "v2.json").payloads == {"a.json": b"1"}


def test_no_payloads_directory_is_no_payloads(tmp_path: Path) -> None:
    assert read_bundle(write_bundle(tmp_path, MANIFEST)).payloads == {}


@pytest.mark.parametrize("target", ["/etc", "../../manifest.json", "../../../elsewhere"])
def test_a_link_out_of_the_payloads_is_an_unsafe_path(tmp_path: Path, target: str) -> None:
    bundle = write_bundle(tmp_path / "app", MANIFEST, {"sub/a.json": b"1"})
    (bundle / "payloads" / "sub" / "out").symlink_to(target)

    assert refusal(bundle) == f"Unsafe payload path: sub/out -> {target}"


def test_payloads_over_64_mib_are_refused_before_they_are_read(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", MANIFEST, {"a.bin": b"1"})
    with (bundle / "payloads" / "huge.bin").open("wb") as huge:  # sparse: the size is all there is to read
        huge.truncate(MAX_BUNDLE_BYTES)

    assert refusal(bundle) == (
        f"{bundle}: the payloads are 67,108,865 bytes in all; at most 67,108,864 bytes (64 MiB) are accepted"
    )


def test_a_manifest_over_1_mib_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    text = json.dumps({**MANIFEST, "blob": "x" * MAX_MANIFEST_BYTES})
    bundle = write_bundle(tmp_path / "app", text)

    assert refusal(bundle) == (
        f"{bundle / 'manifest.json'}: the manifest is {len(text):,} bytes; at most 1,048,576 bytes (1 MiB) are accepted"
    )


def test_what_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{")

    assert refusal(tmp_path / "nowhere") == f"Bundle not found: {tmp_path / 'nowhere'}"
    assert refusal(tmp_path / "empty") == f"Bundle {tmp_path / 'empty'} has no manifest.json"
    assert refusal(tmp_path / "bad.json") == (
        f"{tmp_path / 'bad.json'} is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )


NOT_FINITE = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000, "nested more than 64 levels deep"),  # json.loads alone raises RecursionError
        ('{"graph_id": "app", "nodes": [{"config": {"ratio": NaN}}]}', NOT_FINITE),
        ('{"graph_id": "app", "nodes": [], "x": -Infinity}', NOT_FINITE),
    ],
)
def test_json_the_controller_refuses_is_one_line_before_any_call(tmp_path: Path, text: str, problem: str) -> None:
    bundle = write_bundle(tmp_path / "app", text)

    assert refusal(bundle) == f"{bundle / 'manifest.json'}: {problem}"


@settings(max_examples=200, deadline=None)
@given(value=awkward_values)
def test_fuzz_json_is_sent_as_it_is_or_refused_in_one_line(value: Any) -> None:
    """Refused exactly when the controller would refuse it: nested too deep, or a number that is not finite."""
    text = json.dumps(value)
    with tempfile.TemporaryDirectory() as root:
        try:
            read = read_bundle(write_bundle(Path(root), text))
        except BundleError as error:
            assert unfit(value)
            assert "\n" not in error.message
        else:
            assert not unfit(value)
            assert read.manifest_json == text


@settings(max_examples=200, deadline=None)
@given(text=st.text() | st.builds(lambda n: "[" * n, st.integers(0, 200_000)))
def test_fuzz_any_text_is_read_or_refused_in_one_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        try:
            read_bundle(write_bundle(Path(root), text))
        except BundleError as error:
            assert "\n" not in error.message
