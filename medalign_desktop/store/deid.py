"""A conservative de-identification pass for exported text: obvious identifiers become typed placeholders.

What it masks (and only when the context makes it an identifier, never a bare number or word):

- ``name``: one to three capitalised words after a title (Dr, Mr, Mrs, Ms, Miss, Prof, Patient, Pt):
  ``Dr. Jane Smith`` -> ``Dr. [NAME]``. The title stays, so the sentence still reads.
- ``dob``: a date after "DOB", "D.O.B.", "date of birth" or "born (on)": ``DOB: 03/04/1956`` -> ``DOB: [DOB]``.
  A year alone ("born in 1956") is not masked.
- ``phone``: 10-15 digits written as a phone number (``+44 20 7946 0958``, ``(555) 123-4567``,
  ``555.123.4567``, ``07700 900123``), or 7+ digits after "tel", "phone", "mobile", "call" ...
- ``email``: ``name@host.tld``.
- ``record``: the number after MRN, NHS number, record number, patient ID, hospital / chart number.

Why conservative: the exports train medical models, so a false positive that eats a dose ("0.5 mg"), a lab
value ("K 4.1 mmol/L"), a blood pressure ("120/80") or an ordinary capitalised word damages the data, while
this pass is a safety net, not a guarantee (free-text names without a title are left alone).
"""

from __future__ import annotations

import re
from collections import Counter

KINDS: tuple[str, ...] = ("name", "dob", "phone", "email", "record")
PLACEHOLDERS: dict[str, str] = {
    "name": "[NAME]",
    "dob": "[DOB]",
    "phone": "[PHONE]",
    "email": "[EMAIL]",
    "record": "[RECORD]",
}

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"  # 03/04/1956, 3.4.56
    r"|\d{4}-\d{2}-\d{2}"  # 1956-04-03
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}"  # 3rd April 1956
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"  # April 3, 1956
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_RECORD = re.compile(
    r"(?P<label>\b(?:MRN|NHS\s*(?:number|no\.?|#|:)|(?:medical\s+)?record\s*(?:number|no\.?|#)|"
    r"patient\s*(?:ID|number|no\.?|#)|hospital\s*(?:number|no\.?)|chart\s*(?:number|no\.?))"
    r"(?:\s*(?:is|was|:|#|=))?\s*)"
    r"(?P<value>(?:[A-Z]{1,3}[\s-]?)?\d(?:[\s-]?\d){3,14})(?![\w])",
    re.IGNORECASE,
)
_DOB = re.compile(
    r"(?P<label>\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|born(?:\s+on)?)(?:\s*(?:is|was|:|-))?\s*)"
    rf"(?P<value>{_DATE})(?![\w])",
    re.IGNORECASE,
)
_LABELLED_PHONE = re.compile(
    r"(?P<label>\b(?:tel(?:ephone)?|phone|mobile|cell|call|fax)\.?(?:\s*(?:no\.?|number))?"
    r"(?:\s*(?:is|:|-|on|at))?\s*)"
    r"(?P<value>\+?\(?\d[\d\s().\-]{5,20}\d)(?![\w])",
    re.IGNORECASE,
)
# A phone-shaped run: optional +country, optional (area), then digit groups with one kind of separator.
_PHONE = re.compile(
    r"(?<![\w./+\-])(?P<value>(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{2,5}\)[\s.\-]?)?\d{2,5}(?:[\s.\-]\d{2,8}){1,4})"
    r"(?![\w/]|[.\-]\d)"
)
_TITLE = r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Doctor|Professor|Patient|Pt)\.?"
# Smith, McDonald, O'Neil, Smith-Jones, or an initial "J."; a possessive "'s" is left outside the name.
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"  # Latin-1 letters too: Åsa Öberg, José Núñez
_NAME_WORD = (
    rf"(?:[{_UP}](?:[{_LOW}]+(?:[{_UP}][{_LOW}]+)?|['’][{_UP}][{_LOW}]+)(?:-[{_UP}][{_LOW}]+)*|[{_UP}]\.)"
)
_NAME = re.compile(rf"(?P<label>\b{_TITLE}\s+)(?P<value>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})")
# Capitalised words that follow "Patient" / "Dr" in clinical prose without being names.
_NOT_NAMES = frozenset(
    "History Education Information Id Number No Record Records Care Safety Consent Notes Leaflet Group "
    "Advice Instructions Summary Details Age Sex Name The A An This That With Without And Or Is Was".split()
)


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _looks_like_phone(value: str) -> bool:
    """A separated run is a phone number only with 10-15 digits and a phone-like shape (not a date, a range)."""
    if not 10 <= _digits(value) <= 15:
        return False
    separators = {ch for ch in value if ch in " .-"}
    if value.startswith(("+", "(")):
        return True
    if len(separators) > 1:
        return False  # "12 3-4" style mixes are lists of numbers, not phone numbers
    groups = re.split(r"[\s.\-]", value)
    # Plain space-separated numbers ("100 200 300 400") are lists; phone numbers with spaces start with 0.
    return separators != {" "} or groups[0].startswith("0")


def _mask_labelled(pattern: re.Pattern[str], kind: str, text: str, counts: Counter[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        counts[kind] += 1
        return match.group("label") + PLACEHOLDERS[kind]

    return pattern.sub(replace, text)


def _mask_names(text: str, counts: Counter[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        words = match.group("value").split()
        kept: list[str] = []
        for word in words:  # stop at the first word that is ordinary prose, not part of a name
            if word.strip(".") in _NOT_NAMES:
                break
            kept.append(word)
        if not kept or all(len(word) == 2 and word.endswith(".") for word in kept):
            return match.group(0)
        counts["name"] += 1
        rest = match.group("value")[len(" ".join(kept)) :]
        return match.group("label") + PLACEHOLDERS["name"] + rest

    return _NAME.sub(replace, text)


def _mask_phones(text: str, counts: Counter[str]) -> str:
    def labelled(match: re.Match[str]) -> str:
        if _digits(match.group("value")) < 7:  # "call 999", "tel. ext 12": too short to identify anyone
            return match.group(0)
        counts["phone"] += 1
        return match.group("label") + PLACEHOLDERS["phone"]

    text = _LABELLED_PHONE.sub(labelled, text)

    def replace(match: re.Match[str]) -> str:
        if not _looks_like_phone(match.group("value")):
            return match.group(0)
        counts["phone"] += 1
        return PLACEHOLDERS["phone"]

    return _PHONE.sub(replace, text)


def deidentify(text: str) -> tuple[str, Counter[str]]:
    """``text`` with obvious identifiers masked, and how many of each kind (see :data:`KINDS`) were masked.

    Order matters: e-mail addresses first (they contain digits and dots), then labelled record numbers and
    dates of birth (so their digits are not taken for phone numbers), then phone numbers, then names.
    """
    counts: Counter[str] = Counter()
    if not text:
        return text, counts

    def email(match: re.Match[str]) -> str:
        counts["email"] += 1
        return PLACEHOLDERS["email"]

    text = _EMAIL.sub(email, text)
    text = _mask_labelled(_RECORD, "record", text, counts)
    text = _mask_labelled(_DOB, "dob", text, counts)
    text = _mask_phones(text, counts)
    text = _mask_names(text, counts)
    return text, counts
