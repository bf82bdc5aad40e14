"""packaging/wheelhouse without downloading: arguments, the requirement lists per variant, the files written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.packaging.conftest import load_script

wheelhouse = load_script("wheelhouse")
APP_WHEEL = Path("/wh/medalign_desktop-0.1.0-py3-none-any.whl")


def test_variant_and_dest_are_required_and_checked(capsys):
    with pytest.raises(SystemExit) as exit_:
        wheelhouse.main(["--variant", "gpu", "--dest", "/tmp/x"])
    assert exit_.value.code == 2 and "invalid choice: 'gpu'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        wheelhouse.main(["--variant", "cpu"])
    assert "--dest" in capsys.readouterr().err


def test_cpu_variant_asks_for_the_app_and_the_pinned_cpu_torch():
    args = wheelhouse.build_parser().parse_args(["--variant", "cpu", "--dest", "/wh"])
    assert (args.torch, args.torch_index) == ("torch==2.13.0", None)
    assert wheelhouse.torch_download_args(args.torch, None) == [
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "torch==2.13.0",
    ]
    cpu = wheelhouse.VARIANTS["cpu"]
    assert wheelhouse.app_download_args(cpu, Path("/wh"), APP_WHEEL, "torch==2.13.0+cpu") == [
        "download",
        "--dest",
        "/wh",
        "--find-links",
        "/wh",
        str(APP_WHEEL),
        "torch==2.13.0+cpu",
    ]


def test_cuda_variant_adds_bitsandbytes_and_uses_the_given_torch_index():
    args = wheelhouse.build_parser().parse_args(
        ["--variant", "cuda", "--dest", "/wh", "--torch-index", "https://example.invalid/whl/cu128"]
    )
    assert wheelhouse.torch_download_args(args.torch, args.torch_index)[-3:] == [
        "--index-url",
        "https://example.invalid/whl/cu128",
        "torch==2.13.0",
    ]
    cuda = wheelhouse.VARIANTS["cuda"]
    argv = wheelhouse.app_download_args(cuda, Path("/wh"), APP_WHEEL, "torch==2.13.0+cu128")
    assert argv[-2:] == [f"{APP_WHEEL}[cuda]", "torch==2.13.0+cu128"]
    # The cuda extra of the project is what brings bitsandbytes.
    pyproject = (wheelhouse.ROOT / "pyproject.toml").read_text()
    assert 'cuda = ["bitsandbytes' in pyproject


@pytest.mark.parametrize(
    "variant, version, message",
    [
        ("cpu", "2.13.0", "needs the CPU build of torch"),
        ("cpu", "2.13.0+cu128", "needs the CPU build of torch"),
        ("cuda", "2.13.0+cpu", "got the CPU build of torch"),
    ],
)
def test_the_wrong_torch_build_is_refused(variant, version, message):
    with pytest.raises(wheelhouse.WheelhouseError, match=message):
        wheelhouse.check_torch(wheelhouse.VARIANTS[variant], version, Path(f"torch-{version}-x.whl"))


def test_the_right_torch_builds_pass():
    wheelhouse.check_torch(wheelhouse.VARIANTS["cpu"], "2.13.0+cpu", Path("t.whl"))
    wheelhouse.check_torch(wheelhouse.VARIANTS["cuda"], "2.13.0", Path("t.whl"))
    wheelhouse.check_torch(wheelhouse.VARIANTS["cuda"], "2.13.0+cu128", Path("t.whl"))


def test_requirements_and_checksums_list_every_wheel(tmp_path):
    names = [
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "PySide6_Essentials-6.11.3-cp39-abi3-manylinux_2_28_x86_64.whl",
        "medalign_desktop-0.1.0-py3-none-any.whl",
        "rouge_score-0.1.2-py3-none-any.whl",
    ]
    wheels = []
    for index, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([index]) * 10)
        wheels.append(tmp_path / name)
    assert wheelhouse.requirements_text(wheels) == (
        "medalign-desktop==0.1.0\npyside6-essentials==6.11.3\nrouge-score==0.1.2\ntorch==2.13.0+cpu\n"
    )
    sums = wheelhouse.sha256sums_text(wheels).splitlines()
    assert len(sums) == 4
    assert f"{hashlib.sha256(bytes([2]) * 10).hexdigest()}  medalign_desktop-0.1.0-py3-none-any.whl" in sums


def test_a_file_that_is_not_a_wheel_is_named():
    with pytest.raises(wheelhouse.WheelhouseError, match="notes.txt: not a wheel file name"):
        wheelhouse.parse_wheel(Path("/wh/notes.txt"))
