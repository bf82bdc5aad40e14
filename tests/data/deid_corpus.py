"""Generates ``deid_labelled.jsonl``: synthetic clinical sentences with labelled identifiers and kept terms.

Every identifier and every person here is invented. A template (in ``deid_templates.py``) holds ``{slot}`` markers filled from the pools
below (each slot knows its class) and ``((term))`` markers for medical words and values that must survive
de-identification. Checksummed numbers (NHS, Aadhaar, cards, IBAN) are generated valid, since real ones are.

    python tests/data/deid_corpus.py      # rewrites tests/data/deid_labelled.jsonl (deterministic)

Line format: ``{"id", "text", "identifiers": [{"start", "end", "kind", "text"}], "keep": [{"start", "end",
"text"}], "set": "templates" | "holdout"}``.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("deid_labelled.jsonl")
sys.path.insert(0, str(Path(__file__).parent))
from deid_templates import FIRST, HOLDOUT, KEEP_ONLY, MONTHS, PARTICLE, SURNAME, TEMPLATES  # noqa: E402


def full_name(r: random.Random) -> str:
    form = r.randrange(8)
    first, last = r.choice(FIRST), r.choice(SURNAME)
    if form == 0:
        return f"{first} {r.choice(PARTICLE)}"
    if form == 1:
        return f"{first} {r.choice(FIRST)} {last}"  # three words: the last must go too
    if form == 2:
        return f"{first} {last}-{r.choice(SURNAME)}"
    if form == 3:
        return f"{first[0]}. {last}"
    return f"{first} {last}"


def surname(r: random.Random) -> str:
    return r.choice(SURNAME) if r.random() < 0.8 else r.choice(PARTICLE)


def caps_name(r: random.Random) -> str:
    return f"{r.choice(SURNAME).upper()}, {r.choice(FIRST)}"


def dob(r: random.Random) -> str:
    y, m, d = r.randint(1925, 2022), r.randint(1, 12), r.randint(1, 28)
    mon = MONTHS[m - 1]
    forms = [
        f"{d:02d}/{m:02d}/{y}",
        f"{d}/{m}/{y % 100:02d}",
        f"{d:02d}.{m:02d}.{y}",
        f"{y}-{m:02d}-{d:02d}",
        f"{y}/{m:02d}/{d:02d}",
        f"{y}.{m:02d}.{d:02d}",
        f"{d:02d}{m:02d}{y}",
        f"{d:02d}-{mon[:3]}-{y}",
        f"{d} {mon} {y}",
        f"{mon} {d}, {y}",
        f"{d}{'th' if d > 3 else 'st'} {mon} {y}",
        f"{m:02d}/{d:02d}/{y}",
        f"{d:02d}-{m:02d}-{y}",
        f"{d} {mon[:3]} {y % 100:02d}",
        f"{d:02d}{m:02d}{y % 100:02d}",
    ]
    return r.choice(forms)


def nhs(r: random.Random) -> str:
    while True:
        digits = [r.randint(0, 9) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            s = "".join(map(str, digits)) + str(check)
            return r.choice([f"{s[:3]} {s[3:6]} {s[6:]}", s, f"{s[:3]}-{s[3:6]}-{s[6:]}"])


def luhn(r: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(str(r.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def card(r: random.Random) -> str:
    prefix, length = r.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    s = luhn(r, prefix, length)
    if length == 15:
        return r.choice([f"{s[:4]} {s[4:10]} {s[10:]}", s])
    return r.choice(
        [" ".join(s[i : i + 4] for i in range(0, 16, 4)), "-".join(s[i : i + 4] for i in range(0, 16, 4)), s]
    )


def aadhaar(r: random.Random) -> str:
    from stdnum import verhoeff

    body = str(r.randint(2, 9)) + "".join(str(r.randint(0, 9)) for _ in range(10))
    s = body + verhoeff.calc_check_digit(body)
    return r.choice([f"{s[:4]} {s[4:8]} {s[8:]}", s])


def iban(r: random.Random) -> str:
    country, bban = r.choice(
        [
            ("GB", "NWBK" + "".join(str(r.randint(0, 9)) for _ in range(14))),
            ("DE", "".join(str(r.randint(0, 9)) for _ in range(18))),
            ("FR", "".join(str(r.randint(0, 9)) for _ in range(23))),
        ]
    )
    num = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    s = f"{country}{98 - num % 97:02d}{bban}"
    return r.choice([" ".join(s[i : i + 4] for i in range(0, len(s), 4)), s])


def ssn(r: random.Random) -> str:
    s = f"{r.choice([r.randint(1, 665), r.randint(667, 899)]):03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
    return s if r.random() < 0.8 else s.replace("-", " ")


def nino(r: random.Random) -> str:
    a, b = r.choice("ABCEGHJKLMNOPRSTWXYZ"), r.choice("ABCEGHJKLMNPRSTWXYZ")
    n = f"{r.randint(0, 999999):06d}"
    return r.choice([f"{a}{b}{n}{r.choice('ABCD')}", f"{a}{b} {n[:2]} {n[2:4]} {n[4:]} {r.choice('ABCD')}"])


def passport(r: random.Random) -> str:
    return r.choice(
        [
            f"{r.randint(100000000, 999999999)}",
            f"{r.choice('KLMNPZ')}{r.randint(1000000, 9999999)}",
            f"{r.choice('ABC')}{r.choice('KLMN')}{r.randint(1000000, 9999999)}",
        ]
    )


def mrn(r: random.Random) -> str:
    n = r.randint(100000, 99999999)
    return r.choice(
        [
            f"{n}",
            f"H{n}",
            f"RX-{n}",
            f"{n // 1000:05d}-{n % 1000:03d}",
            f"K{n:08d}",
            f"MR{n}",
            f"A{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}",
        ]
    )


def phone(r: random.Random) -> str:
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    forms = [
        f"07700 900{d(3)}",
        f"+44 7700 900{d(3)}",
        f"020 7946 0{d(3)}",
        f"+44 (0)161 496 0{d(3)}",
        f"0113 496 0{d(3)}",
        f"(212) 555-{r.randint(1000, 1999)}",
        f"+1 415-555-0{d(3)}",
        f"617.555.0{d(3)}",
        f"1-800-555-0{d(3)}",
        f"+49 30 {d(8)}",
        f"030 {d(4)} {d(4)}",
        f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"01 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"+91 98{d(3)} {d(5)}",
        f"+91-22-{d(4)}-{d(4)}",
        f"098{d(2)} {d(5)}",
        f"+61 4{d(2)} {d(3)} {d(3)}",
        f"(02) 9{d(3)} {d(4)}",
        f"04{d(2)} {d(3)} {d(3)}",
        f"+353 87 {d(3)} {d(4)}",
        f"+34 612 {d(3)} {d(3)}",
        f"+31 6 {d(8)}",
        f"+39 06 {d(4)} {d(4)}",
    ]
    return r.choice(forms)


def email(r: random.Random) -> str:
    first, last = r.choice(FIRST).lower(), r.choice(SURNAME).lower().replace("'", "")
    return r.choice(
        [
            f"{first}.{last}@nhs.net",
            f"{first[0]}{last}@example.org",
            f"{first}_{last}72@gmail.com",
            f"{last}.{first}@hôpital-paris.fr",
            f"dr.{last}@clinic.com.au",
            f"{first}+appt@mail.co.in",
            "josé.núñez@hôpital.fr",
            f"{first}.{last}@charite.de",
            f"{last}@uni-klinik.de",
        ]
    )


def address(r: random.Random) -> str:
    n = r.randint(1, 480)
    street = r.choice(
        [
            "Acacia Avenue",
            "Baker Street",
            "High Road",
            "Church Lane",
            "Elm Street",
            "Maple Drive",
            "Station Road",
            "Victoria Crescent",
            "Orchard Close",
            "Queen's Parade",
            "Mill Lane",
            "Westbourne Grove",
            "King Street",
            "Riverside Way",
            "Hawthorn Gardens",
            "Oak Terrace",
        ]
    )
    forms = [
        f"{n} {street}",
        f"{n}B {street}",
        f"Flat {r.randint(1, 30)}, {n} {street}",
        f"Apt {r.randint(1, 30)}C, {n} {street}",
        f"{n} N. Michigan Ave",
        f"{n} Sunset Blvd",
        f"Unit {r.randint(1, 9)}/{n} George St",
        f"Hauptstraße {n}",
        f"{n} rue de la Paix",
        f"Via Roma {n}",
        f"Calle Mayor {n}",
        f"{n}, MG Road",
        f"{n} Rosewood Court",
        f"{n} Pine Ridge Rd",
    ]
    return r.choice(forms)


def postcode(r: random.Random) -> str:
    return r.choice(
        [
            "SW1A 2AA",
            "M1 1AE",
            "B33 8TH",
            "CR2 6XH",
            "DN55 1PT",
            "LS6 3HG",
            "EH1 1YZ",
            "W1A 0AX",
            "NW3 2QG",
            "BS8 1TH",
            "G12 8QQ",
            "CF10 3AT",
            "OX3 9DU",
            "L69 3BX",
            "EC1V 9NR",
        ]
    )


def zipcode(r: random.Random) -> str:
    state = r.choice(["IL", "NY", "CA", "MA", "TX", "WA", "OH"])
    z = f"{r.randint(10000, 99899)}"
    return state, r.choice([z, f"{z}-{r.randint(1000, 9999)}"])


def ip(r: random.Random) -> str:
    return r.choice(
        [
            f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
            f"172.16.{r.randint(0, 31)}.{r.randint(2, 250)}",
            f"2001:db8:{r.randint(1, 9999)}::{r.randint(1, 99)}",
        ]
    )


def url(r: random.Random) -> str:
    last = r.choice(SURNAME).lower().replace("'", "")
    return r.choice(
        [
            f"https://www.{last}-physio.co.uk/booking",
            f"http://patients.example.org/p/{r.randint(1000, 99999)}",
            f"www.{last}family.com",
            f"https://portal.clinic.com.au/records?id={r.randint(1000, 9999)}",
            f"https://facebook.com/{last}.{r.randint(10, 99)}",
        ]
    )


SLOTS = {  # slot -> (class, generator)
    "name": ("name", full_name),
    "surname": ("name", surname),
    "first": ("name", lambda r: r.choice(FIRST)),
    "caps": ("name", caps_name),
    "dob": ("dob", dob),
    "nhs": ("record", nhs),
    "mrn": ("record", mrn),
    "phone": ("phone", phone),
    "email": ("email", email),
    "address": ("address", address),
    "postcode": ("postcode", postcode),
    "card": ("card", card),
    "ssn": ("national_id", ssn),
    "nino": ("national_id", nino),
    "passport": ("national_id", passport),
    "aadhaar": ("national_id", aadhaar),
    "iban": ("account", iban),
    "ip": ("ip", ip),
    "url": ("url", url),
}


def inline(marked: str) -> dict:
    text, identifiers, keep = "", [], []
    for token in re.split(r"(\[\[\w+:[^\]]+\]\]|\(\([^()]+\)\))", marked):
        if token.startswith("[["):
            kind, value = token[2:-2].split(":", 1)
            identifiers.append(
                {"start": len(text), "end": len(text) + len(value), "kind": kind, "text": value}
            )
            text += value
        elif token.startswith("(("):
            keep.append({"start": len(text), "end": len(text) + len(token) - 4, "text": token[2:-2]})
            text += token[2:-2]
        else:
            text += token
    return {"text": text, "identifiers": identifiers, "keep": keep, "set": "holdout"}


def fill(template: str, r: random.Random) -> dict:
    text, identifiers, keep = "", [], []
    state = None
    for token in re.split(r"(\{\w+\}|\(\((?:[^()]|\([^()]*\))+\)\))", template):
        if token.startswith("{") and token.endswith("}"):
            slot = token[1:-1]
            if slot in ("state", "zip"):
                if state is None:
                    state = zipcode(r)
                if slot == "state":
                    text += state[0]
                    continue
                kind, value = "postcode", state[1]
            else:
                kind, gen = SLOTS[slot]
                value = gen(r)
            identifiers.append(
                {"start": len(text), "end": len(text) + len(value), "kind": kind, "text": value}
            )
            text += value
        elif token.startswith("((") and token.endswith("))"):
            term = token[2:-2]
            keep.append({"start": len(text), "end": len(text) + len(term), "text": term})
            text += term
        else:
            text += token
    return {"text": text, "identifiers": identifiers, "keep": keep, "set": "templates"}


def generate(seed: int = 19, fills: int = 3) -> list[dict]:
    r = random.Random(seed)
    records = [fill(t, r) for t in TEMPLATES for _ in range(fills)]
    records += [fill(t, r) for t in KEEP_ONLY]
    records += [inline(t) for t in HOLDOUT]
    return [{"id": i, **rec} for i, rec in enumerate(records)]


if __name__ == "__main__":
    rows = generate()
    with OUT.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    n_id = sum(len(row["identifiers"]) for row in rows)
    n_keep = sum(len(row["keep"]) for row in rows)
    print(f"{len(rows)} records, {n_id} identifiers, {n_keep} kept terms -> {OUT}")
