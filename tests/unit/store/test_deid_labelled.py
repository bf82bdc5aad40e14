"""De-identification on the labelled synthetic set, offline, and cheap to import.

The set (``tests/data/deid_labelled.jsonl``, written by ``tests/data/deid_corpus.py``) labels every identifier
by span and class, and the medical terms and values that must survive; ``benchmarks/deid.py`` prints the
per-class figures and the old pass's baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from medalign_desktop.store.deid import KINDS, PLACEHOLDERS, deidentify, find_identifiers

DATA = Path(__file__).resolve().parents[2] / "data" / "deid_labelled.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def _masked_chars(text: str) -> list[bool]:
    masked = [False] * len(text)
    for start, end, _ in find_identifiers(text):
        masked[start:end] = [True] * (end - start)
    return masked


def test_the_set_is_big_and_varied():
    kinds = Counter(ident["kind"] for row in ROWS for ident in row["identifiers"])
    assert sum(kinds.values()) >= 300 and sum(len(row["keep"]) for row in ROWS) >= 150
    assert set(kinds) == set(KINDS)  # every class is exercised


def test_recall_and_every_medical_term_kept():
    found = total = true_spans = spans = 0
    lost, missed = [], []
    for row in ROWS:
        text, masked = row["text"], _masked_chars(row["text"])
        for ident in row["identifiers"]:
            total += 1
            if all(masked[i] for i in range(ident["start"], ident["end"]) if text[i].isalnum()):
                found += 1
            else:
                missed.append(ident["text"])
        for term in row["keep"]:
            if any(masked[term["start"] : term["end"]]):
                lost.append(term["text"])
        for start, end, _ in find_identifiers(text):
            spans += 1
            true_spans += any(i["start"] < end and start < i["end"] for i in row["identifiers"])
    recall, precision = found / total, true_spans / spans
    print(f"recall {recall:.3f} precision {precision:.3f}")
    assert recall >= 0.95, missed
    assert not lost
    assert precision >= 0.95


@pytest.mark.parametrize(
    "text",
    [
        "Patient Group Directions allow nurses to supply Paracetamol.",
        "Her mother Had breast cancer at 45; his father Died of MI.",
        "Consultant Led Care Unit; Midwife Led Unit; Patient Transport Services.",
        "Signed: Yes. Name: Not given. Patient: Unknown.",
        "Regards,\nThe Cardiology Team",
        "Dear Colleague,\nPlease see the attached Discharge Summary.",
        "Seen by Physiotherapy and Occupational Therapy today; reviewed by Neurology.",
        "Discussed with Microbiology: start Tazocin 4.5 g IV TDS.",
        "Warfarin 5 mg, Apixaban 5 mg BD, Rivaroxaban 20 mg OD, Edoxaban 60 mg.",
        "Seen in A&E on 12/03/2024 at 14:35; discharged 13/03/2024.",
        "Troponin T 52 ng/L at 0 h and 61 ng/L at 3 h; SNOMED 44054006; follow-up 2024-06-01.",
        "IMPRESSION, Community acquired pneumonia. ASSESSMENT, Stable angina.",
        "Lot number 4J552A, expiry 2026-04. Call 111 or 999 if symptoms worsen.",
        "Mother: well. Father: hypertension. Sister: asthma.",
        "Bell's palsy, Wilson's disease, Down syndrome, Hodgkin lymphoma and Cushing syndrome.",
        "Patient Positioning, Patient Safety and Nurse Education; Glasgow Coma Scale 14; Apgar 9.",
        "Sister Mary Joseph nodule palpable; Patient E. coli UTI; H. pylori; Mallory-Weiss tear.",
        "Gleason 3+4=7; T2N0M0; MRC power 4/5; heparin 10 000 units; platelets 150 000; Ward 7B, Bay 3 Bed 4.",
        "The nurse Practitioner reviewed; the doctor Prescribed Amoxicillin; Practitioner Metformin review.",
    ],
)
def test_clinical_text_survives(text):
    assert deidentify(text) == (text, Counter())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient: SMITH, John", "Patient: [NAME]"),
        ("Signed: J. Smith", "Signed: [NAME]"),
        ("Regards,\nAnna Kowalski", "Regards,\n[NAME]"),
        ("Dear Dr van der Berg,", "Dear Dr [NAME],"),
        ("seen with her sister Maria O'Neill", "seen with her sister [NAME]"),
        ("Seen by Dr Baker re Baker's cyst", "Seen by Dr [NAME] re Baker's cyst"),
        ("Staff nurse Kelly Brookes", "Staff nurse [NAME]"),
        ("Herr Matthias Vogel, geb. 12.03.1967", "Herr [NAME], geb. [DOB]"),
        ("DOB 03041956", "DOB [DOB]"),
        ("DOB: 3/4/56", "DOB: [DOB]"),
        ("date of birth 1956.04.03", "date of birth [DOB]"),
        ("SSN 536-22-8417", "SSN [NATIONAL_ID]"),
        ("NI number QQ 12 34 56 C", "NI number [NATIONAL_ID]"),
        ("Passport no. 533380006", "Passport no. [NATIONAL_ID]"),
        ("mail josé.núñez@hôpital.fr", "mail [EMAIL]"),
        ("Lives at Flat 3, 45 High Road, Leeds LS6 3HG", "Lives at [ADDRESS], Leeds [POSTCODE]"),
        ("Springfield, IL 62704-1234", "Springfield, IL [POSTCODE]"),
        ("card 4111 1111 1111 1111", "card [CARD]"),
        ("tel +49 30 12345678", "tel [PHONE]"),
        ("from 10.1.2.3 via https://portal.example.org/x", "from [IP] via [URL]"),
    ],
)
def test_classes_beyond_the_first_pass(text, expected):
    assert deidentify(text)[0] == expected
    assert all(PLACEHOLDERS[kind] in expected for kind in deidentify(text)[1])


_OFFLINE = """
import socket
class Refuse(socket.socket):  # a class still, so that ssl and friends can subclass it at import
    def __init__(self, *args, **kwargs):
        raise OSError("network access during de-identification")
def refuse(*args, **kwargs):
    raise OSError("network access during de-identification")
socket.socket = Refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from medalign_desktop.store.deid import deidentify
print(deidentify("Mail ana.lópez@clínica.es or see www.example.co.uk/page, from 10.0.0.7.")[0])
"""


def test_no_network():
    """From a fresh process with sockets refused: the e-mail/URL validation reads tldextract's bundled suffix
    list (a default tldextract would try to download it at first use, and fall back only after a timeout)."""
    out = subprocess.run([sys.executable, "-c", _OFFLINE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Mail [EMAIL] or see [URL], from [IP]."
    assert "network access" not in out.stderr and "publicsuffix" not in out.stderr


def test_importing_the_store_does_not_import_presidio():
    code = "import sys, medalign_desktop.store; print(any(m.startswith(('presidio', 'spacy', 'phonenumbers')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_speed_of_a_note():
    note = "\n".join(row["text"] for row in ROWS[:40])[:2000]
    deidentify(note)  # warm-up: imports and compiled patterns
    started = time.perf_counter()
    for _ in range(20):
        deidentify(note)
    per_note = (time.perf_counter() - started) / 20
    assert per_note < 0.1  # ~7 ms on the dev box; generous for a loaded CI machine
