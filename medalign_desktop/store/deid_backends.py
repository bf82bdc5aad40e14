"""The maintained detectors behind :mod:`deid`: Presidio's pattern recognisers, ``phonenumbers``, ``python-stdnum``.

Why these are imported lazily (inside :func:`recognisers`, cached): importing ``presidio_analyzer`` pulls in its
NLP engines (spaCy, transformers, torch), seconds that opening the store must not pay. Only the recognizer
classes are used, each called with ``nlp_artifacts=None``: no AnalyzerEngine, no spaCy model.

Offline: Presidio's e-mail and URL validation call ``tldextract.extract``, whose default extractor downloads the
public suffix list. :class:`_OfflineTld` replaces that validation with an extractor that reads tldextract's
bundled snapshot (``suffix_list_urls=()``, no cache directory), so nothing here opens a socket.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

Span = tuple[int, int, str]  # (start, end, kind)

# Presidio entity -> (our kind, least score accepted). Scores are the recognisers' own: a checksum that
# passes lifts a result to 1.0, one that fails drops it; the "very weak" SSN shapes (0.05) are left out.
_ENTITIES: dict[str, tuple[str, float]] = {
    "CREDIT_CARD": ("card", 0.5),
    "US_SSN": ("national_id", 0.5),
    "UK_NINO": ("national_id", 0.5),
    "IN_AADHAAR": ("national_id", 0.5),
    "IBAN_CODE": ("account", 0.5),
    "UK_NHS": ("record", 0.5),
    "IP_ADDRESS": ("ip", 0.5),
    "EMAIL_ADDRESS": ("email", 0.5),
    "URL": ("url", 0.5),
    "UK_POSTCODE": ("postcode", 0.1),
}
PHONE_REGIONS = ("GB", "US", "IN", "AU", "DE", "FR")


@functools.lru_cache(maxsize=1)
def _offline_extractor() -> Any:
    import tldextract

    # suffix_list_urls=() reads the snapshot shipped inside tldextract; cache_dir=None writes nothing.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _has_domain(text: str) -> bool:
    return _offline_extractor()(text.rsplit("@", 1)[-1]).fqdn != ""


@functools.lru_cache(maxsize=1)
def recognisers() -> tuple[Any, ...]:
    """The Presidio recognisers we use, built once (their regexes compile on first use and are kept)."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        InAadhaarRecognizer,
        IpRecognizer,
        NhsRecognizer,
        UkNinoRecognizer,
        UkPostcodeRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmail(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:  # the offline suffix list, never a download
            return _has_domain(pattern_text)

    class OfflineUrl(UrlRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            host = re.sub(r"^[a-z]+://", "", pattern_text, flags=re.I).split("/", 1)[0].split("?", 1)[0]
            return _has_domain(host)

    return (
        CreditCardRecognizer(), UsSsnRecognizer(), UkNinoRecognizer(), InAadhaarRecognizer(), IbanRecognizer(),
        NhsRecognizer(), IpRecognizer(), OfflineEmail(), OfflineUrl(), UkPostcodeRecognizer(),
    )  # fmt: skip


# Cheap gates: a recogniser runs only when its kind of token can be in the text at all (most notes have no
# "@", no "://" and no 9+ digit runs); this keeps a 2,000-character note in the low milliseconds.
_DIGIT_RUN = re.compile(r"\d(?:[\s.\-]?\d){8,}")
_NEEDS = {
    "CREDIT_CARD": _DIGIT_RUN, "US_SSN": re.compile(r"\d{3}[- .]\d{2}[- .]\d{4}"), "IN_AADHAAR": _DIGIT_RUN,
    "UK_NHS": _DIGIT_RUN, "UK_NINO": re.compile(r"\d{2} ?\d{2} ?\d{2} ?[A-Da-d]\b"),
    "IBAN_CODE": re.compile(r"\b[A-Z]{2}\d{2}"), "IP_ADDRESS": re.compile(r"\d\.\d|:[\da-fA-F]*:"),
    "EMAIL_ADDRESS": re.compile("@"), "URL": re.compile(r"://|www\.|\w\.(?:com|org|net|uk|au|in|de|fr)\b"),
    "UK_POSTCODE": re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b"),
}  # fmt: skip


def presidio_spans(text: str) -> Iterator[Span]:
    for recogniser in recognisers():
        entity = recogniser.supported_entities[0]
        gate = _NEEDS.get(entity)
        if gate is not None and not gate.search(text):
            continue
        kind, least = _ENTITIES[entity]
        for result in recogniser.analyze(text, entities=[entity], nlp_artifacts=None):
            if result.score >= least:
                end = result.end
                while kind in ("url", "email") and end > result.start and text[end - 1] in ".,;:!?)'\"":
                    end -= 1  # "see www.example.org/page," : the comma ends the sentence, not the URL
                yield result.start, end, kind


def phone_spans(text: str) -> Iterator[Span]:
    """International phone numbers, as ``phonenumbers`` finds them for each region (see below for leniency).

    ``PhoneNumberMatcher`` costs about a millisecond per region on a 2,000-character note, so it runs on
    short windows around phone-shaped digit runs instead of the whole text: the same matches, far cheaper.
    """
    import phonenumbers

    found: list[tuple[int, int]] = []
    for segment in _SEGMENT.finditer(text):
        runs = list(_PHONE_CANDIDATE.finditer(segment.group()))
        if not runs:
            continue
        lo, window = segment.start(), segment.group()
        digits = [lo + run.start() + i for run in runs for i, ch in enumerate(run.group()) if ch.isdigit()]
        for region in PHONE_REGIONS:  # most likely first; stop once every digit run is placed
            for match in phonenumbers.PhoneNumberMatcher(window, region, phonenumbers.Leniency.POSSIBLE):
                span = (lo + match.start, lo + match.end)
                # VALID numbers; or, written internationally ("+31 6 ..."), POSSIBLE ones: numbering plans
                # change faster than the library, and the "+" is evidence enough.
                raw, n = match.raw_string, _digits(match.raw_string)
                plus = raw.startswith("+") and n >= 9
                # Short national numbers must look dialled ("0...", "(0..."): an 8-digit code (SNOMED) or a
                # date (2024-03-12) is valid somewhere in some plan, and is not a phone number here.
                dialled = raw.startswith(("0", "(")) or (n >= 10 and _us_shape(raw))
                if (
                    span not in found
                    and n >= 8
                    and not _DATE_SHAPE.fullmatch(raw)
                    and (plus or (dialled and phonenumbers.is_valid_number(match.number)))
                ):
                    found.append(span)
            if all(any(a <= d < b for a, b in found) for d in digits):
                break
    for start, end in found:
        yield start, end, "phone"


# A run of 7+ digits with phone separators; the matcher runs only on the clauses (split at , ; and line
# ends, which never fall inside a phone number) that hold one.
_PHONE_CANDIDATE = re.compile(r"\d(?:[ ().\-/]{0,3}\d){6,}")
_SEGMENT = re.compile(r"[^,;\n]+")
_DATE_SHAPE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


def _us_shape(raw: str) -> bool:
    """Ten digits not dialled with 0: only in the North American shapes, never a list ("20 40 60 80 100")."""
    if set(re.sub(r"\d", "", raw)) <= {" "}:
        return [len(group) for group in raw.split()] in ([3, 3, 4], [1, 3, 3, 4], [10], [11])
    return True


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def valid_nhs(digits: str) -> bool:
    """NHS / CHI mod-11 check (both are 10 digits with the same weighting)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = (11 - total % 11) % 11
    return check != 10 and check == int(digits[9])


def valid_card(digits: str) -> bool:
    from stdnum import luhn

    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def valid_ssn(value: str) -> bool:
    from stdnum.us import ssn

    return ssn.is_valid(value.replace(" ", "-"))
