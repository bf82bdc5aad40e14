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


def test_each_variant_downloads_exactly_its_lock_hash_checked():
    args = wheelhouse.build_parser().parse_args(["--variant", "cpu", "--dest", "/wh"])
    cpu = wheelhouse.VARIANTS[args.variant]
    assert cpu.lock == wheelhouse.ROOT / "requirements" / "cpu.txt"
    assert wheelhouse.lock_download_args(cpu, Path("/wh"), None) == [
        "download",
        "--dest",
        "/wh",
        "--require-hashes",
        "-r",
        str(cpu.lock),
    ]
    cuda = wheelhouse.VARIANTS["cuda"]
    argv = wheelhouse.lock_download_args(cuda, Path("/wh"), "https://example.invalid/whl/cpu")
    assert argv[3:5] == ["--extra-index-url", "https://example.invalid/whl/cpu"]
    assert argv[-1] == str(wheelhouse.ROOT / "requirements" / "cuda.txt")


@pytest.mark.parametrize(
    "variant, torch, others",
    [("cpu", "torch==2.13.0+cpu", ()), ("cuda", "torch==2.13.0", ("bitsandbytes==",))],
)
def test_the_locks_pin_every_package_with_hashes_and_the_variants_torch(variant, torch, others):
    """The locks (made by `make lock`) are what set-up, CI and the wheelhouse install: every requirement
    pinned exactly and hashed, the variant's torch build, and bitsandbytes for 4-bit loading."""
    text = wheelhouse.VARIANTS[variant].lock.read_text(encoding="utf-8")
    requirements = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(requirements) > 50
    assert all("==" in line and line.endswith("\\") for line in requirements), "pinned, with a hash below"
    names = {line.split("==")[0] for line in requirements}
    assert {"pyside6-essentials", "transformers", "trl", "peft", "bitsandbytes", "pytest"} <= names
    assert f"{torch} \\" in requirements
    assert all(any(line.startswith(other) for line in requirements) for other in others)
    assert "medalign-desktop" not in names  # the project itself is installed from the checkout


def test_the_torch_wheel_of_the_lock_must_have_arrived(tmp_path):
    with pytest.raises(wheelhouse.WheelhouseError, match="no torch wheel"):
        wheelhouse.check_torch_in(wheelhouse.VARIANTS["cpu"], tmp_path)
    (tmp_path / "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    with pytest.raises(wheelhouse.WheelhouseError, match="needs the CPU build"):
        wheelhouse.check_torch_in(wheelhouse.VARIANTS["cpu"], tmp_path)
    wheelhouse.check_torch_in(wheelhouse.VARIANTS["cuda"], tmp_path)


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
