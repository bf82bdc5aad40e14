"""Our own context rules of :mod:`deid`: identifiers that only a cue word makes identifying.

Each rule yields ``(start, end, kind)`` for the *value* only, so the cue stays ("DOB: [DOB]"). A bare date,
a bare 8-digit number or a bare 5-digit number is clinical data (a follow-up date, a dose in units, a lab
count); after "DOB", "MRN", "passport" or a US state it is an identifier. Cue words match in any case, values
are matched case-sensitively (an identifier's letters are capitals; prose after it is not).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from medalign_desktop.store.deid_backends import Span, valid_card, valid_nhs, valid_ssn

_SEP = r"(?:\s*(?:is|was|:|#|=|-|–)\s*|\s+)"  # between a cue and its value: "DOB: ", "MRN is ", "NHS # "
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"  # 03/04/1956, 3.4.56, 04-03-1956
    r"|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}"  # 1956-04-03, 1956/04/03, 1956.04.03
    r"|\d{8}|\d{6}"  # 03041956, 030456: compact, only ever after a birth cue
    rf"|\d{{1,2}}(?:st|nd|rd|th)?[\s\-]+(?:of\s+)?{_MONTHS}[\s\-,]+(?:\d{{4}}|\d{{2}})"  # 3rd April 1956, 03-Apr-56
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"  # April 3, 1956
)
_DOB = re.compile(
    r"(?i:\b(?:DOB|D\.O\.B\.?|DoB|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?|b\.|"
    r"geb\.|geboren(?:\s+am)?|Geburtsdatum|née?(?:\s+le)?|date\s+de\s+naissance|nat[oa](?:\s+il)?|"
    r"data\s+di\s+nascita|nacid[oa](?:\s+el)?|fecha\s+de\s+nacimiento|geboortedatum))(?![\w])\.?:?"
    rf"{_SEP}?(?P<v>{_DATE})(?![\w/])"
)
# Record numbers: a hospital's own ids, any letters/digits shape, after a cue naming one.
_NUMBER_WORD = r"(?:\s*(?:number|num|no\.?|#|ID|identifier|card))"
# Strong cues name an id by themselves ("MRN 1234"); weak ones ("NHS", "unit", "case") need "number",
# "no." or a colon ("NHS 2019 review" is a year, "NHS No: 943 ..." is a number).
_RECORD_CUE = (
    r"(?i:\b(?:(?:MRN|M\.R\.N\.?|URN|NPI|GMC|NMC)" + _NUMBER_WORD + r"*"
    r"|(?:NHS|CHI|UR|unit|hosp(?:ital)?|record|chart|case|patient|pt\.?|visit|encounter|accession|lab|episode|"
    r"admission|account|acct|member|policy|claim|insurance|ref(?:erence)?|ID|I\.D\.)(?:"
    + _NUMBER_WORD
    + r"+|(?=:))))"
)
_ID_VALUE = r"(?=[A-Z0-9\-/ ]*\d)[A-Z]{0,4}[\-/ ]?\d[A-Z0-9]*(?:[\-/ ]\d[A-Z0-9]*){0,4}"
_RECORD = re.compile(rf"{_RECORD_CUE}:?{_SEP}(?P<v>{_ID_VALUE})(?![\w/])")
_NATIONAL_CUE = (
    r"(?i:\b(?:(?:SSN|S\.S\.N\.?|social\s+security|NINO|national\s+insurance|passport|aadha?ar|TFN|"
    r"tax\s+file|PESEL|personnummer|codice\s+fiscale|steuer-?id|national\s+id(?:entity)?|ID\s+card|"
    r"identity\s+card|driving\s+licen[cs]e|driver'?s\s+license|IHI)" + _NUMBER_WORD + r"*"
    r"|(?:NI|PAN|SIN|BSN|NIR|DNI|NIE|CF|DL|medicare|tax\s+id)(?:"
    + _NUMBER_WORD
    + r"+|(?=:)|(?=\s+[A-Z0-9]*\d))))"
)
_NATIONAL_VALUE = r"(?=[A-Z0-9 \-]*\d)[A-Z]{0,6}[ \-]?\d[A-Z0-9]*(?:[ \-](?:\d[A-Z0-9]*|[A-Z]\b)){0,5}"
_NATIONAL = re.compile(rf"{_NATIONAL_CUE}:?(?:\s*\([^)]{{1,20}}\))?{_SEP}(?P<v>{_NATIONAL_VALUE})(?![\w/])")
_BARE_PAN = re.compile(
    r"\b[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]\b"
)  # India's PAN: the 4th letter is the holder type
_BARE_CF = re.compile(r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b")  # Italy's codice fiscale
_BARE_SSN = re.compile(r"(?<![\w/.\-])\d{3}-\d{2}-\d{4}(?![\w/]|[.\-]\d)")
_BARE_TEN = re.compile(r"(?<![\w/.\-])\d{3}[ \-]?\d{3}[ \-]?\d{4}(?![\w/]|[.\-]\d)")  # NHS / CHI shape
_BARE_CARD = re.compile(
    r"(?<![\w/.\-])\d{4}(?:[ \-]?\d{4}){2}[ \-]?\d{1,7}(?![\w/]|[.\-]\d)|\b\d{4} \d{6} \d{5}\b"
)
_PHONE_CUE = re.compile(
    r"(?i:\b(?:tel(?:ephone)?|phone|ph|mob(?:ile)?|cell|call|fax|contact(?:\s+number)?|pager|whatsapp|"
    r"reached\s+on|ring|landline)\.?(?:\s*(?:no\.?|number|#))?)"
    rf"(?:{_SEP}|\s*(?:on|at)\s+)(?P<v>\+?\(?\d[\d\s().\-/]{{5,22}}\d)(?![\w])"
)
# A phone-shaped run without a cue: optional +country, optional (area), digit groups with one separator.
_PHONE = re.compile(
    r"(?<![\w./+\-])(?P<v>(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,5}\)[\s.\-]?)?\d{2,5}(?:[\s.\-]\d{2,8}){1,4})"
    r"(?![\w/]|[.\-]\d)"
)
# Full street words, then abbreviations (which may carry a dot: "George St."; a full word's dot ends a sentence).
# Indian addresses: "No. 12, 3rd Cross, Indiranagar", "#45, 2nd Main Road".
_IN_ADDRESS = re.compile(
    r"(?P<v>(?:No\.?|#)[ \t]*\d+[A-Z]?,?[ \t]*\d{1,2}(?:st|nd|rd|th)[ \t]+(?:Cross|Main|Block|Stage|Phase|"
    r"Sector)(?:[ \t]+Road)?(?:,[ \t]*[A-Z][a-z]+(?:[ \t]+[A-Z][a-z]+)?)?)"
)
_STREET_SUFFIX = (
    r"(?:(?:Street|Road|Avenue|Lane|Drive|Close|Crescent|Way|Place|Court|Boulevard|Terrace|Gardens|Grove|"
    r"Square|Hill|Row|Mews|Parade|Walk|Highway|Parkway|Circle|Green|Rise|View|Marg|Nagar|Path|Wharf|Quay|"
    r"Broadway|Esplanade|Embankment)\b"
    r"|(?:St|Rd|Ave|Av|Ln|Dr|Cl|Cres|Pl|Ct|Blvd|Tce|Gdns|Gr|Sq|Pde|Hwy|Pkwy|Cir)\b\.?)"
)
_BUILDING = (
    r"(?:(?:[A-Z][\w'’\-]*\s+){1,3}(?:Apartments|House|Court|Tower|Towers|Building|Residency|Mansions|Lodge|"
    r"Heights|Villas?|Complex|Block|Chambers|Cottages?|Farm|Hall|Centre|Center|Surgery|Practice),\s*)"
)
_UNIT = (
    r"(?:(?:Flat|Apt\.?|Apartment|Unit|Suite|Ste\.?|Room|Rm\.?)\s*\d+[A-Z]?(?:\s*,\s*|\s+|/)"
    rf"{_BUILDING}?|{_BUILDING})"
)
_STREET_WORD = r"(?:[A-Z][\w'’\-]*\.?|\d{1,3}(?:st|nd|rd|th)|of|the|de|la)"  # 310 West 97th Street
_ADDRESS = re.compile(
    rf"(?<![\w/])(?P<v>{_UNIT}?\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?,?\s+(?:{_STREET_WORD}\s+){{1,3}}{_STREET_SUFFIX}"
    r"(?:,?[ \t]*(?:Apt\.?|Apartment|Unit|Suite|Ste\.?|Flat|#)[ \t]*\d+[A-Z]?)?)"  # "4021 Maple Avenue, Apt 7"
    r"|(?P<w>(?:\b(?:rue|avenue|boulevard|place|chemin|Via|Viale|Piazza|Corso|Calle|Avenida|Plaza|Rua|Carrer)"
    r"\s+(?:(?:de|del|della|di|la|le|du|des|da|do|dos)\s+)*[A-ZÀ-Ý][\w'’\-]*(?:\s+[A-ZÀ-Ý][\w'’\-]*)?\s+\d{1,4}[a-z]?)"
    r"|(?<![\w/])\d{1,4}[a-z]?,?\s+(?:[Rr]ue|[Aa]venue|[Bb]oulevard|[Pp]lace|[Cc]hemin|[Aa]llée|[Ii]mpasse|[Qq]uai)"
    r"\s+(?:(?:de|du|des|la|le|l')\s*)*[A-ZÀ-Ý][\w'’\-]*(?:\s+[A-ZÀ-Ý][\w'’\-]*){0,2}"
    r"|\b[A-ZÄÖÜ][\wäöüß\-]*(?:stra(?:ß|ss)e|str\.|weg|gasse|allee|platz|ring|damm|ufer)\s+\d{1,4}[a-z]?\b)"
)
_UK_POSTCODE = r"(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})"
_US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR NSW VIC QLD SA WA TAS ACT NT"
).split()
_POSTCODE = re.compile(
    rf"\b(?:{'|'.join(sorted(set(_US_STATES)))})\s+(?P<v>\d{{5}}(?:-\d{{4}})?|\d{{4}})\b"  # IL 62704, NSW 2000
    r"|(?i:\b(?:zip(?:\s*code)?|post\s*code|postal\s+code|PIN(?:\s*code)?|PLZ|CAP)):?\s*(?P<w>[A-Z0-9]{2,5}[ \-]?[A-Z0-9]{3,4})\b"
    rf"|(?<![\w\-])(?P<x>{_UK_POSTCODE})(?![\w\-])"
    r"|(?<=, )(?P<y>\d{5})(?= [A-ZÀ-Ý][a-zà-ÿ]+)"  # ", 75008 Paris", ", 10115 Berlin": after an address comma
)
_PIN_AFTER_CITY = re.compile(
    r"(?:Mumbai|Delhi|Chennai|Kolkata|Bengaluru|Bangalore|Pune|Hyderabad|Ahmedabad|Jaipur|Lucknow)"
    r"\s*[\-–,]?\s*(?P<v>\d{3} ?\d{3})\b"
)
_ZIP_AFTER_US_CITY = re.compile(r"\b[A-Z][a-z]+, [A-Z]{2} (?P<v>\d{5}(?:-\d{4})?)\b")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _groups(pattern: re.Pattern[str], text: str, kind: str, names: str = "v") -> Iterator[Span]:
    for match in pattern.finditer(text):
        for name in names:
            if match.group(name):
                yield match.start(name), match.end(name), kind
                break


def dob_spans(text: str) -> Iterator[Span]:
    return _groups(_DOB, text, "dob")


# A date right after a name, in a header ("Jane Doe, 14/02/1948" or "Jane Doe (03.04.56)"), is a birth date.
_DATE_AFTER_NAME = re.compile(rf"(?:,[ \t]*|[ \t]+\(|[ \t]+-[ \t]+)(?P<v>{_DATE})(?![\w/])")


def dob_after_names(text: str, names: list[Span]) -> Iterator[Span]:
    for _, end, _ in names:
        match = _DATE_AFTER_NAME.match(text, end)
        if match:
            yield match.start("v"), match.end("v"), "dob"


def record_spans(text: str) -> Iterator[Span]:
    for match in _RECORD.finditer(text):
        value = match.group("v").rstrip(" -/")
        if len(_digits(value)) >= 4:  # "patient 2", "lab 7": too short to identify a record
            yield match.start("v"), match.start("v") + len(value), "record"
    for match in _BARE_TEN.finditer(text):  # a bare NHS / CHI number: 10 digits that pass the mod-11 check
        if valid_nhs(_digits(match.group())):
            yield match.start(), match.end(), "record"


def national_spans(text: str) -> Iterator[Span]:
    for match in _NATIONAL.finditer(text):
        value = match.group("v").rstrip(" -")
        if len(_digits(value)) >= 4:
            yield match.start("v"), match.start("v") + len(value), "national_id"
    for match in (*_BARE_PAN.finditer(text), *_BARE_CF.finditer(text)):
        yield match.start(), match.end(), "national_id"
    for match in _BARE_SSN.finditer(text):
        if valid_ssn(match.group()):
            yield match.start(), match.end(), "national_id"


def card_spans(text: str) -> Iterator[Span]:
    for match in _BARE_CARD.finditer(text):
        if valid_card(_digits(match.group())):
            yield match.start(), match.end(), "card"


def phone_rule_spans(text: str) -> Iterator[Span]:
    for match in _PHONE_CUE.finditer(text):
        value = match.group("v").rstrip(" -(")
        if len(_digits(value)) >= 7:  # "call 999", "ext 12": too short to identify anyone
            yield match.start("v"), match.start("v") + len(value), "phone"
    for match in _PHONE.finditer(text):
        if _looks_like_phone(match.group("v")):
            yield match.start("v"), match.end("v"), "phone"


def _looks_like_phone(value: str) -> bool:
    """A separated run is a phone number only with 10-15 digits and a phone-like shape (not a date, a range)."""
    if not 10 <= len(_digits(value)) <= 15:
        return False
    separators = {ch for ch in value if ch in " .-"}
    if value.startswith(("+", "(")):
        return True
    if len(separators) > 1:
        return value.startswith("1-")  # 1-800-555-0199; other mixes ("12 3-4") are lists of numbers
    groups = re.split(r"[\s.\-]", value)
    # Plain space-separated numbers ("100 200 300 400") are lists; phone numbers with spaces start with 0.
    return separators != {" "} or groups[0].startswith("0")


def address_spans(text: str) -> Iterator[Span]:
    yield from _groups(_ADDRESS, text, "address", "vw")
    yield from _groups(_IN_ADDRESS, text, "address")


def postcode_spans(text: str) -> Iterator[Span]:
    yield from _groups(_POSTCODE, text, "postcode", "vwxy")
    yield from _groups(_PIN_AFTER_CITY, text, "postcode")
    yield from _groups(_ZIP_AFTER_US_CITY, text, "postcode")


RULES = (dob_spans, record_spans, national_spans, card_spans, phone_rule_spans, address_spans, postcode_spans)
