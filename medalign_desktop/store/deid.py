"""De-identification of exported text: identifiers become typed placeholders, clinical content stays.

``deidentify(text)`` returns the masked text and how many identifiers of each kind (:data:`KINDS`) it masked.
Only the identifying value is replaced, so the cue stays and the sentence still reads: ``Dr. [NAME]``,
``DOB: [DOB]``, ``MRN [RECORD]``.

Where the detections come from (all offline, all in-process):

- :mod:`deid_backends`: Presidio's pattern recognisers (cards with Luhn, US SSN, UK NINO, Aadhaar, IBAN, NHS
  numbers with mod-11, IP addresses, e-mail, URL, UK postcodes; e-mail and URL validated against tldextract's
  bundled suffix list, never a download), and ``phonenumbers`` for international phone numbers.
- :mod:`deid_rules`: values that only a cue makes identifying: dates of birth in every common format, record
  and national numbers, labelled phones, street addresses, ZIP / PIN / postcodes after a state or city.
- :mod:`deid_names`: person names after titles, roles, labels, relatives, greetings and sign-offs, all-caps
  surnames, and every later mention of a name so found; eponyms and clinical words are kept.

What it does not promise: a name with no cue anywhere in the text ("Jane went home") is not found, nor is a
bare date that is not marked as a birth date (clinical dates are data). Doses, lab values, blood pressures,
ICD codes and drug names are left alone: the exports train medical models, and a false positive that eats
"0.5 mg" damages the data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from medalign_desktop.store import deid_backends, deid_names, deid_rules
from medalign_desktop.store.deid_backends import Span

KINDS: tuple[str, ...] = (
    "name", "dob", "phone", "email", "record", "national_id", "address", "postcode", "card", "account", "ip",
    "url",
)  # fmt: skip
PLACEHOLDERS: dict[str, str] = {kind: f"[{kind.upper()}]" for kind in KINDS}
# What the manifest says about the pass (see export.py): honest about what is not guaranteed.
NOTE = (
    "Identifiers of the listed classes were masked where found. Names are found only after a cue (a title, a "
    "role, a label such as 'Patient:', a greeting or signature, an all-caps surname) and where they recur; a "
    "name with no cue, and dates that are not marked as birth dates, are not guaranteed to be masked."
)
# When two detections overlap, the union is masked and labelled with the most specific kind.
_PRIORITY = {kind: rank for rank, kind in enumerate(
    ("email", "url", "card", "account", "national_id", "record", "dob", "ip", "phone", "postcode", "address",
     "name"))}  # fmt: skip


def find_identifiers(text: str) -> list[Span]:
    """Non-overlapping ``(start, end, kind)`` spans of the identifiers in ``text``, in text order."""
    if not text:
        return []
    spans: list[Span] = list(deid_backends.presidio_spans(text))
    spans += deid_backends.phone_spans(text)
    for rule in deid_rules.RULES:
        spans += rule(text)
    names = list(deid_names.name_spans(text))
    spans += names
    spans += deid_rules.dob_after_names(text, names)
    return _merge(spans)


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[list] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start >= end:
            continue
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], end)
            if _PRIORITY[kind] < _PRIORITY[last[2]]:
                last[2] = kind
        else:
            merged.append([start, end, kind])
    return [(start, end, kind) for start, end, kind in merged]


def deidentify(text: str) -> tuple[str, Counter[str]]:
    """``text`` with identifiers masked, and how many of each kind (see :data:`KINDS`) were masked."""
    counts: Counter[str] = Counter()
    spans = find_identifiers(text)
    if not spans:
        return text, counts
    parts: list[str] = []
    at = 0
    for start, end, kind in spans:
        parts += (text[at:start], PLACEHOLDERS[kind])
        counts[kind] += 1
        at = end
    parts.append(text[at:])
    return "".join(parts), counts


# The kinds the first pass had: reports and manifests always list these (a zero says "scanned, none found");
# the newer kinds appear in ``n_masked`` when found, and all of them in the manifest's "deidentification".
CORE_KINDS: tuple[str, ...] = ("name", "dob", "phone", "email", "record")


def reported_counts(counts: Counter[str] | dict[str, int]) -> dict[str, int]:
    """Counts for a report: every core kind, and any other kind that was found."""
    return {kind: int(counts.get(kind, 0)) for kind in KINDS if kind in CORE_KINDS or counts.get(kind)}


def manifest_section(counts: Counter[str] | dict[str, int]) -> dict:
    """The manifest's account of a de-identified export: classes scanned, counts per class, and the caveat."""
    return {
        "classes": list(KINDS),
        "counts": {kind: int(counts.get(kind, 0)) for kind in KINDS},
        "note": NOTE,
    }
