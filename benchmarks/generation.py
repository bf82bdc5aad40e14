"""Generation benchmark: the engine's streaming path against a bare ``model.generate``, side by side.

On SmolLM2-135M-Instruct (the demo model; converted on first use), the same prompt and greedy settings
are run alternately through both paths after a warm-up, so machine noise hits both alike. Reports the
median tokens/s of each, their ratio (target >= 0.95), and the engine's median time to first token.

    python benchmarks/generation.py [--rounds 5] [--max-new-tokens 128] [--dtype auto|float32|bfloat16]

Last line: one JSON object (see ../shared/DESIGN.md, "benchmark").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

QUESTION = "What are the first steps in managing a patient with suspected sepsis in the emergency department?"


def bare_generate(engine, settings) -> tuple[float, int, str]:
    """The baseline: chat template + model.generate, no streamer, no stopping criterion."""
    import torch

    started = time.perf_counter()
    enc = engine.encode(QUESTION, settings.system_prompt)
    with torch.inference_mode():
        out = engine.model.generate(
            **enc,
            max_new_tokens=settings.max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=engine.tokenizer.pad_token_id,
        )
    elapsed = time.perf_counter() - started
    new_tokens = out[0, enc["input_ids"].shape[1] :]  # (n_new,)
    return elapsed, len(new_tokens), engine.tokenizer.decode(new_tokens, skip_special_tokens=True)


def streamed_generate(engine, settings):
    pieces: list[str] = []
    result = engine.generate(QUESTION, settings, on_text=pieces.append)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    import torch

    from medalign_desktop.engine import Engine, SamplingSettings
    from medalign_desktop.engine.gguf_import import install_demo_model

    model_dir = install_demo_model(progress=print).path
    engine = Engine()
    loaded = engine.load(model_dir, dtype=args.dtype)
    print(
        f"model: {loaded.describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    settings = SamplingSettings(temperature=0.0, max_new_tokens=args.max_new_tokens)

    streamed_generate(engine, settings)  # warm-up both paths: first calls pay one-off kernel set-up
    bare_generate(engine, settings)
    engine_tps, bare_tps, ttfts = [], [], []
    for round_no in range(args.rounds):
        result = streamed_generate(engine, settings)
        elapsed, n_bare, bare_text = bare_generate(engine, settings)
        if bare_text.strip() != result.text.strip():
            raise SystemExit("The two paths produced different text; the comparison would be unfair.")
        engine_tps.append(result.tokens_per_s)
        bare_tps.append(n_bare / elapsed)
        ttfts.append(result.time_to_first_token_s)
        print(
            f"round {round_no + 1}: engine {result.tokens_per_s:.1f} tok/s ({result.n_tokens} tokens, "
            f"first token {result.time_to_first_token_s * 1000:.0f} ms), bare {n_bare / elapsed:.1f} tok/s"
        )
    ratio = statistics.median(engine_tps) / statistics.median(bare_tps)
    figures = {
        "benchmark": "generation",
        "model": loaded.label,
        "dtype": loaded.plan.dtype,
        "max_new_tokens": args.max_new_tokens,
        "engine_tokens_per_s": round(statistics.median(engine_tps), 2),
        "bare_tokens_per_s": round(statistics.median(bare_tps), 2),
        "ratio": round(ratio, 3),
        "time_to_first_token_ms": round(statistics.median(ttfts) * 1000, 1),
        "targets": {"ratio": ">= 0.95"},
        "met": ratio >= 0.95,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
