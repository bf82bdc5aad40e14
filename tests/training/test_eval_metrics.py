"""The evaluation metrics: option parsing on many phrasings, ROUGE-L and BLEU against hand-computed values,
and the per-version summary (unparsed answers count as wrong and are reported)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from training.eval_metrics import bleu, is_correct, option_letters, parse_option, rouge_l, summarise

DIURETICS = {"A": "Spironolactone", "B": "Furosemide", "C": "Furosemide and spironolactone", "D": "Mannitol"}
ANTICOAGULANTS = ["Aspirin", "Heparin", "Warfarin"]
DRUG_CLASSES = {"A": "Beta blocker", "B": "ACE inhibitor", "C": "Calcium channel blocker"}


@pytest.mark.parametrize(
    ("answer", "options", "expected"),
    [
        # the letter alone, dressed in every way
        ("B", None, "B"),
        ("(B)", None, "B"),
        ("B.", None, "B"),
        ("b", None, "B"),
        ("**B**", None, "B"),
        ("  [C]  ", None, "C"),
        ("A", None, "A"),
        ("B) Furosemide", DIURETICS, "B"),
        ("B. Furosemide is the loop diuretic.", DIURETICS, "B"),
        ("(d) mannitol", DIURETICS, "D"),
        # explicit choices
        ("Answer: B", None, "B"),
        ("The answer is B", None, "B"),
        ("The answer is B.", None, "B"),
        ("the correct answer is b", None, "B"),
        ("answer: c.", None, "C"),
        ("**Answer:** C", None, "C"),
        ("Answer: (D)", None, "D"),
        ("My answer: **(A)** Aspirin", ANTICOAGULANTS, "A"),
        ("The answer is: B) Furosemide.", DIURETICS, "B"),
        ("The answer is (b) furosemide", DIURETICS, "B"),
        ("Answer - e", None, "E"),
        ("The correct option is (c).", None, "C"),
        ("I would choose C because it lowers preload.", None, "C"),
        ("I'd go with B.", None, "B"),
        ("C is correct.", None, "C"),
        ("The answer is therefore D", None, "D"),
        ("$\\boxed{C}$", None, "C"),
        ("The answer is B because A is contraindicated in renal failure.", None, "B"),
        ("Option B", None, "B"),
        ("The answer is option (B)", None, "B"),
        ("Answer:\n\nB", None, "B"),
        ("**B. Furosemide**", DIURETICS, "B"),
        ("I think it's B.", None, "B"),
        ("The answer is A.", None, "A"),
        # an explicit choice wins over incidental mentions
        ("Option A is tempting, but the answer is C.", None, "C"),
        ("Answer: B\n\nExplanation: option A is wrong because it spares potassium.", None, "B"),
        ("B is incorrect; D is the best answer.", None, "D"),
        ("I think the answer is A, but my final answer is B.", None, "B"),
        # the option's text without its letter
        ("Furosemide", DIURETICS, "B"),
        ("Loop diuretics such as furosemide are first line.", DIURETICS, "B"),
        ("Furosemide and spironolactone together.", DIURETICS, "C"),  # the longer option contains B's text
        ("Heparin is the drug of choice.", ANTICOAGULANTS, "B"),
        ("The answer is a beta blocker.", DRUG_CLASSES, "A"),
        # ambiguous or no choice: None, never a guess
        ("Options A and C both seem plausible.", None, None),
        ("A or B", None, None),
        ("Both A and B are diuretics.", None, None),
        ("Furosemide or mannitol, depending on the cause.", DIURETICS, None),
        ("The answer is a beta blocker.", None, None),  # "a" is the article
        ("I don't know.", None, None),
        ("", None, None),
        ("   ", None, None),
        ("A patient with heart failure needs diuresis.", None, None),
        ("E. coli is the most likely cause.", None, None),
        ("Vitamin B12 deficiency.", None, None),
        ("The answer is not B.", None, None),
        ("The answer is F", DIURETICS, None),  # not one of the options
        ("Answer: F", None, None),  # without options only A-E count
        ("Give 40 mg IV and reassess.", DIURETICS, None),
    ],
)
def test_parse_option(answer, options, expected):
    assert parse_option(answer, options) == expected


def test_option_letters_of_each_form():
    assert option_letters(["x", "y"]) == {"A": "x", "B": "y"}
    assert option_letters({"a": "x", "(b)": "y"}) == {"A": "x", "B": "y"}
    assert list(option_letters(None)) == list("ABCDE")
    assert parse_option("b", {"a": "x", "b": "y"}) == "B"


def test_is_correct():
    assert is_correct("B", "B") is True
    assert is_correct("B", "(b)") is True
    assert is_correct("A", "B") is False
    assert is_correct(None, "B") is False  # unparsed counts as wrong
    assert is_correct("A", None) is None  # not a multiple-choice question


def test_rouge_l_known_values():
    assert rouge_l(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(1.0)
    assert rouge_l(["alpha beta"], ["gamma delta"]) == 0.0
    # LCS("a b c d", "a c e d") = "a c d": P = R = 3/4, F = 0.75 (rouge-score lower-cases and splits words)
    assert rouge_l(["A b c d"], ["a c e d"]) == pytest.approx(0.75)
    # P = 2/2, R = 2/4: F = 2PR / (P + R) = 2/3; the mean over two pairs: (2/3 + 1) / 2
    assert rouge_l(["a b", "x y"], ["a b c d", "x y"]) == pytest.approx((2 / 3 + 1) / 2)


def test_bleu_known_values():
    sentence = "furosemide forty milligrams intravenously twice a day"
    assert bleu([sentence], [sentence]) == pytest.approx(100.0)
    assert bleu(["one two three four five"], ["six seven eight nine ten"]) == pytest.approx(0.0)
    # The last of six words changed, same length (no brevity penalty): 1..4-gram precisions 5/6, 4/5, 3/4,
    # 2/3, so BLEU = 100 * (5/6 * 4/5 * 3/4 * 2/3) ** (1/4) = 100 * (1/3) ** (1/4)
    assert bleu(["a b c d e x"], ["a b c d e f"]) == pytest.approx(100 * (1 / 3) ** 0.25, rel=1e-6)


@pytest.mark.parametrize("metric", [rouge_l, bleu])
def test_metrics_refuse_mismatched_or_empty_input(metric):
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        metric(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="No prediction"):
        metric([], [])


def row(text, correct=None, parsed=None, reference=None, reward=None, n_tokens=10, cached=False):
    return {
        "text": text,
        "n_tokens": n_tokens,
        "cached": cached,
        "parsed_option": parsed,
        "correct": correct,
        "reward": reward,
        "reference_answer": reference,
    }


def test_summarise_counts_unparsed_as_wrong():
    rows = [
        row("Answer: B", correct=True, parsed="B", reward=1.0, n_tokens=4),
        row("Answer: C", correct=False, parsed="C", reward=0.0, n_tokens=4, cached=True),
        row("no idea", correct=False, parsed=None, reward=-1.0, n_tokens=3),
        row("the cat sat on the mat", reference="the cat sat on the mat", reward=2.0, n_tokens=9),
        row("alpha beta", reference="gamma delta", reward=0.5, n_tokens=5, cached=True),
        row("open answer without reference", reference="  ", reward=0.0, n_tokens=5),
    ]
    summary = summarise(rows, has_reward=True)
    assert summary == {
        "n_questions": 6,
        "n_mcq": 3,
        "mcq_correct": 1,
        "mcq_unparsed": 1,
        "accuracy": pytest.approx(1 / 3),
        "n_with_reference": 2,
        "rouge_l": pytest.approx(0.5),  # (1 + 0) / 2
        "bleu": pytest.approx(
            bleu(["the cat sat on the mat", "alpha beta"], ["the cat sat on the mat", "gamma delta"])
        ),
        "reward_mean": pytest.approx(2.5 / 6),
        "mean_length_tokens": pytest.approx(30 / 6),
        "n_generated": 4,
        "n_cached": 2,
    }


def test_summarise_without_mcq_references_or_reward_gives_nulls():
    summary = summarise([row("x", reward=None), row("y")], has_reward=False)
    assert summary["accuracy"] is None and summary["n_mcq"] == 0
    assert summary["rouge_l"] is None and summary["bleu"] is None and summary["n_with_reference"] == 0
    assert summary["reward_mean"] is None
    assert summary["mean_length_tokens"] == 10.0


def test_metrics_and_the_evaluate_config_import_without_torch():
    """The app imports these (results, configs) without loading torch; the metric libraries load lazily."""
    code = (
        "import sys, training.eval_metrics, training.evaluate, training.config; "
        "loaded = [m for m in ('torch', 'transformers', 'rouge_score', 'sacrebleu') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
