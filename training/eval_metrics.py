"""Metrics of the `evaluate` program: the chosen option of a multiple-choice answer, ROUGE-L, BLEU, summaries.

Pure functions, importable without torch (the app and part 2's report may import them). ROUGE-L comes from
Google's ``rouge-score`` package and BLEU from ``sacrebleu``, both imported lazily; neither downloads
anything at run time (rouge-score's stemmer is off, so no NLTK data is needed).

Option parsing (:func:`parse_option`) reads free text the way a marker would, strongest evidence first:

1. "final answer: X";
2. an explicit choice: "the answer is X", "Answer: (X)", "I would choose X", "X is correct", "\\boxed{X}";
3. the answer opens with the letter: "B", "(B)", "B.", "B) Furosemide";
4. marked mentions anywhere: "(B)", "option B", "B)" or "B." at the start of a line;
5. the text of exactly one option ("Furosemide"), a longer option winning over one it contains;
6. a lone capital letter ("I'd say B").

The first level that finds something decides: one distinct letter is the answer, several are ambiguous and
give None (counted as wrong and reported as unparsed), never a guess. Letters that are English words in
context are not letters: "a beta blocker", "I think", "e.g.", "E. coli".
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

Options = Mapping[str, str] | Sequence[str] | None
DEFAULT_LETTERS = "ABCDE"  # without options, only a letter A-E counts

_LETTER = r"[\(\[]?(?<![A-Za-z0-9])([A-Za-z])(?![A-Za-z0-9])[\)\]]?"
_CONNECTOR = r"(?:\s*(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=|:|-|–|—))*"
_ADVERB = r"(?:\s*(?:therefore|thus|hence|clearly|probably|most\s+likely|likely|definitely))?"
_LABEL = r"(?:\s*(?:option|choice|letter)\s*:?)?"
_FINAL = [re.compile(r"\bfinal\s+answer\b" + _CONNECTOR + _ADVERB + _LABEL + r"\s*" + _LETTER, re.I)]
_EXPLICIT = [
    re.compile(r"\banswers?\b" + _CONNECTOR + _ADVERB + _LABEL + r"\s*" + _LETTER, re.I),
    re.compile(
        r"\b(?:option|choice)\b" + r"(?:\s*(?:is|would\s+be|=|:))+" + _ADVERB + r"\s*" + _LETTER, re.I
    ),
    re.compile(
        r"\b(?:choose|chose|choosing|select|selected|pick|picked|go\s+with|going\s+with)\b"
        r"\s*(?:option|choice|answer)?\s*" + _LETTER,
        re.I,
    ),
    re.compile(
        r"(?:\b(?:option|choice)\s*)?" + _LETTER + r"\s*(?:is|would\s+be)\s+(?:the\s+)?"
        r"(?:correct|right|best|most\s+(?:likely|appropriate))\b",
        re.I,
    ),
    re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?" + _LETTER, re.I),
]
_START = [re.compile(r"^\s*[\(\[]?([A-Za-z])(?:[\)\]]|[.:\-–]|\s*$)")]
_MARKED = [
    re.compile(r"\(([A-Za-z])\)|\[([A-Z])\]"),
    re.compile(r"\b(?:option|choice)\s+" + _LETTER, re.I),
    re.compile(r"^\s*([A-Z])[.):]", re.M),
    re.compile(r"(?<![A-Za-z0-9(\[])([A-Z])\)"),
]
_BARE = [re.compile(r"(?<![A-Za-z0-9])([A-Z])(?![A-Za-z0-9])")]
_MARKDOWN = re.compile(r"[*`#$]+|(?<!\w)_+|_+(?!\w)")


def option_letters(options: Options) -> dict[str, str | None]:
    """Letter -> option text: a mapping's single-letter keys (upper-cased), a list's A, B, ... by position,
    or A-E without texts when there are no options."""
    if options is None:
        return dict.fromkeys(DEFAULT_LETTERS)
    if isinstance(options, Mapping):
        letters: dict[str, str | None] = {}
        for key, text in options.items():
            letter = normalise_key(str(key))
            if letter is not None:
                letters[letter] = text if isinstance(text, str) else None
        return letters
    return {chr(ord("A") + i): (t if isinstance(t, str) else None) for i, t in enumerate(list(options)[:26])}


def normalise_key(key: str | None) -> str | None:
    """ "b", "(B)", "B." -> "B"; None for anything that is not one letter."""
    if key is None:
        return None
    stripped = re.sub(r"[\s()\[\].:]", "", key).upper()
    return stripped if len(stripped) == 1 and "A" <= stripped <= "Z" else None


_ARTICLE_A_EXCEPTIONS = {"and", "or", "nor", "is", "was", "seems", "looks", "but", "because", "then", "as"}


def _not_a_choice(
    text: str, match: re.Match[str], group: int, letters: dict[str, str | None], bare: bool
) -> bool:
    """Whether the letter found is a word, an abbreviation or a negated mention rather than a choice."""
    raw, before, after = match.group(group), text[: match.start(group)], text[match.end(group) :]
    if re.search(r"(?:\bnot|\bnever|\bexcept|n't)\s*(?:option|choice)?\s*[\(\[]?$", before, re.I):
        return True  # "the answer is not B", "isn't (C)"
    if raw in ("a", "i") and re.match(r"\s+[A-Za-z]", after):  # "a beta blocker", "i think"
        return True
    if bare and raw == "I" and re.match(r"\s*['A-Za-z0-9]", after):  # "I think", "I'd"
        return True
    word = re.match(r"\s+([A-Za-z0-9]+)", after)
    if bare and raw == "A" and word and word.group(1) not in _ARTICLE_A_EXCEPTIONS:  # "A patient"
        return True
    if re.match(r"[.-][A-Za-z]", after):  # "e.g.", "i.e.", "A-fib", "B-cell"
        return True
    following = re.match(r"\.\s+([a-z][\w-]*)", after)  # "E. coli", unless option E's text reads so
    if following:
        option_text = (letters.get(raw.upper()) or "").strip().casefold()
        return not option_text.startswith(following.group(1).casefold())
    return False


def _letters_found(
    text: str, patterns: list[re.Pattern[str]], letters: dict[str, str | None], bare: bool = False
) -> set[str]:
    found: set[str] = set()
    for pattern in patterns:
        for match in pattern.finditer(text):
            group = next(i for i in range(1, (match.lastindex or 0) + 1) if match.group(i))
            letter = match.group(group).upper()
            if letter in letters and not _not_a_choice(text, match, group, letters, bare):
                found.add(letter)
    return found


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.casefold())) + " "


def _by_option_text(text: str, letters: dict[str, str | None]) -> set[str]:
    """Letters whose option text appears whole in the answer; an option inside a longer matching one is
    dropped ("Furosemide" inside "Furosemide and spironolactone")."""
    answer = _words(text)
    texts = {letter: _words(t) for letter, t in letters.items() if t and len(_words(t).strip()) >= 2}
    matched = {letter: t for letter, t in texts.items() if t in answer}
    return {
        letter
        for letter, t in matched.items()
        if not any(other != letter and t in longer and t != longer for other, longer in matched.items())
    }


def parse_option(answer: str, options: Options = None) -> str | None:
    """The option letter (upper case) an answer chooses, or None when it names none or is ambiguous."""
    if not answer or not answer.strip():
        return None
    letters = option_letters(options)
    text = _MARKDOWN.sub("", answer)
    levels: list[Any] = [
        lambda: _letters_found(text, _FINAL, letters),
        lambda: _letters_found(text, _EXPLICIT, letters),
        lambda: _letters_found(text, _START, letters),
        lambda: _letters_found(text, _MARKED, letters),
        lambda: _by_option_text(text, letters),
        lambda: _letters_found(text, _BARE, letters, bare=True),
    ]
    for level in levels:
        found = level()
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def is_correct(parsed: str | None, answer_key: str | None) -> bool | None:
    """None for a question without a key (not multiple choice); an unparsed answer is wrong."""
    key = normalise_key(answer_key)
    if key is None:
        return None
    return parsed == key


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")
    if not predictions:
        raise ValueError("No prediction to score.")


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (0..1) of each prediction against its reference (rouge-score, no stemming).

    rouge-score's tokenizer lower-cases and keeps ASCII letters and digits only."""
    _check_pairs(predictions, references)
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [
        scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references, strict=True)
    ]
    return float(statistics.fmean(scores))


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU (0..100, default 13a tokenisation, one reference per prediction)."""
    _check_pairs(predictions, references)
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def _mean(values: list[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def summarise(rows: Sequence[Mapping[str, Any]], has_reward: bool = False) -> dict[str, Any]:
    """One version's results (results.json's per-version object) from its answer rows.

    Each row: ``text``, ``n_tokens``, ``cached``, ``parsed_option``, ``correct`` (None: not multiple
    choice), ``reward`` and ``reference_answer`` (None or blank: no reference)."""
    mcq = [r for r in rows if r["correct"] is not None]
    mcq_correct = sum(1 for r in mcq if r["correct"])
    referenced = [r for r in rows if r.get("reference_answer") and str(r["reference_answer"]).strip()]
    predictions = [str(r["text"]) for r in referenced]
    references = [str(r["reference_answer"]) for r in referenced]
    rewards = [float(r["reward"]) for r in rows if r.get("reward") is not None]
    return {
        "n_questions": len(rows),
        "n_mcq": len(mcq),
        "mcq_correct": mcq_correct,
        "mcq_unparsed": sum(1 for r in mcq if r["parsed_option"] is None),
        "accuracy": mcq_correct / len(mcq) if mcq else None,
        "n_with_reference": len(referenced),
        "rouge_l": rouge_l(predictions, references) if referenced else None,
        "bleu": bleu(predictions, references) if referenced else None,
        "reward_mean": _mean(rewards) if has_reward else None,
        "mean_length_tokens": _mean([float(r["n_tokens"]) for r in rows]),
        "n_generated": sum(1 for r in rows if not r["cached"]),
        "n_cached": sum(1 for r in rows if r["cached"]),
    }
