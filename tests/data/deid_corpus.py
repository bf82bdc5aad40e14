"""Generates ``deid_labelled.jsonl``: synthetic clinical sentences with labelled identifiers and kept terms.

Every identifier and every person here is invented. A template holds ``{slot}`` markers filled from the pools
below (each slot knows its class) and ``((term))`` markers for medical words and values that must survive
de-identification. Checksummed numbers (NHS, Aadhaar, cards, IBAN) are generated valid, since real ones are.

    python tests/data/deid_corpus.py      # rewrites tests/data/deid_labelled.jsonl (deterministic)

Line format: ``{"id", "text", "identifiers": [{"start", "end", "kind", "text"}], "keep": [{"start", "end",
"text"}]}``.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).with_name("deid_labelled.jsonl")

FIRST = ("Jane Amelia Oliver Priya Rahul Sinéad Chloé Björn Zoë Mohammed Aisha Wei Hiroshi Olumide Kwame Fatima "
         "Liam Grace Tomasz Agnieszka Siobhán Ravi Deepa Connor Mateo Lucía Henrik Ingrid Kofi Ananya Arjun "
         "Harriet Edward Ruth Declan Nkechi Yusuf Elif Dmitri Svetlana Isabella Giorgos Noor").split()
SURNAME = ("Whitfield Okafor Kowalski Nakamura Patel Sharma O'Brien McAllister MacLeod Fitzgerald Haddad "
           "Nguyen Lindqvist Müller Dubois Rossi García Ferreira Abernethy Thistlewood Brennan Chaudhry "
           "Iyer Menon Adeyemi Osei Kaczmarek Novak Papadopoulos Johansson Hughes Llewellyn Pemberton "
           "Ashworth Blackwood Castellano Nørgaard Ó'Súilleabháin Achterberg Holloway Radcliffe").split()
PARTICLE = ("van der Berg", "de la Cruz", "von Trapp", "van Dijk", "de Souza", "di Stefano", "O'Connell",
            "MacDonald", "ter Horst", "bin Rashid", "da Silva", "Le Roux", "dos Santos", "van den Broek")
MONTHS = "January February March April May June July August September October November December".split()


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
    forms = [f"{d:02d}/{m:02d}/{y}", f"{d}/{m}/{y % 100:02d}", f"{d:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{d:02d}",
             f"{y}/{m:02d}/{d:02d}", f"{y}.{m:02d}.{d:02d}", f"{d:02d}{m:02d}{y}", f"{d:02d}-{mon[:3]}-{y}",
             f"{d} {mon} {y}", f"{mon} {d}, {y}", f"{d}{'th' if d > 3 else 'st'} {mon} {y}",
             f"{m:02d}/{d:02d}/{y}", f"{d:02d}-{m:02d}-{y}", f"{d} {mon[:3]} {y % 100:02d}", f"{d:02d}{m:02d}{y%100:02d}"]
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
    return r.choice([" ".join(s[i:i + 4] for i in range(0, 16, 4)), "-".join(s[i:i + 4] for i in range(0, 16, 4)), s])


def aadhaar(r: random.Random) -> str:
    from stdnum import verhoeff

    body = str(r.randint(2, 9)) + "".join(str(r.randint(0, 9)) for _ in range(10))
    s = body + verhoeff.calc_check_digit(body)
    return r.choice([f"{s[:4]} {s[4:8]} {s[8:]}", s])


def iban(r: random.Random) -> str:
    country, bban = r.choice([("GB", "NWBK" + "".join(str(r.randint(0, 9)) for _ in range(14))),
                              ("DE", "".join(str(r.randint(0, 9)) for _ in range(18))),
                              ("FR", "".join(str(r.randint(0, 9)) for _ in range(23)))])
    num = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    s = f"{country}{98 - num % 97:02d}{bban}"
    return r.choice([" ".join(s[i:i + 4] for i in range(0, len(s), 4)), s])


def ssn(r: random.Random) -> str:
    s = f"{r.choice([r.randint(1, 665), r.randint(667, 899)]):03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
    return s if r.random() < 0.8 else s.replace("-", " ")


def nino(r: random.Random) -> str:
    a, b = r.choice("ABCEGHJKLMNOPRSTWXYZ"), r.choice("ABCEGHJKLMNPRSTWXYZ")
    n = f"{r.randint(0, 999999):06d}"
    return r.choice([f"{a}{b}{n}{r.choice('ABCD')}", f"{a}{b} {n[:2]} {n[2:4]} {n[4:]} {r.choice('ABCD')}"])


def passport(r: random.Random) -> str:
    return r.choice([f"{r.randint(100000000, 999999999)}", f"{r.choice('KLMNPZ')}{r.randint(1000000, 9999999)}",
                     f"{r.choice('ABC')}{r.choice('KLMN')}{r.randint(1000000, 9999999)}"])


def mrn(r: random.Random) -> str:
    n = r.randint(100000, 99999999)
    return r.choice([f"{n}", f"H{n}", f"RX-{n}", f"{n // 1000:05d}-{n % 1000:03d}", f"K{n:08d}", f"MR{n}",
                     f"A{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}"])


def phone(r: random.Random) -> str:
    d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
    forms = [f"07700 900{d(3)}", f"+44 7700 900{d(3)}", f"020 7946 0{d(3)}", f"+44 (0)161 496 0{d(3)}",
             f"0113 496 0{d(3)}", f"(212) 555-{r.randint(1000, 1999)}", f"+1 415-555-0{d(3)}",
             f"617.555.0{d(3)}", f"1-800-555-0{d(3)}", f"+49 30 {d(8)}", f"030 {d(4)} {d(4)}",
             f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"01 {d(2)} {d(2)} {d(2)} {d(2)}", f"+91 98{d(3)} {d(5)}",
             f"+91-22-{d(4)}-{d(4)}", f"098{d(2)} {d(5)}", f"+61 4{d(2)} {d(3)} {d(3)}", f"(02) 9{d(3)} {d(4)}",
             f"04{d(2)} {d(3)} {d(3)}", f"+353 87 {d(3)} {d(4)}", f"+34 612 {d(3)} {d(3)}",
             f"+31 6 {d(8)}", f"+39 06 {d(4)} {d(4)}"]
    return r.choice(forms)


def email(r: random.Random) -> str:
    first, last = r.choice(FIRST).lower(), r.choice(SURNAME).lower().replace("'", "")
    return r.choice([f"{first}.{last}@nhs.net", f"{first[0]}{last}@example.org", f"{first}_{last}72@gmail.com",
                     f"{last}.{first}@hôpital-paris.fr", f"dr.{last}@clinic.com.au", f"{first}+appt@mail.co.in",
                     "josé.núñez@hôpital.fr", f"{first}.{last}@charite.de", f"{last}@uni-klinik.de"])


def address(r: random.Random) -> str:
    n = r.randint(1, 480)
    street = r.choice(["Acacia Avenue", "Baker Street", "High Road", "Church Lane", "Elm Street", "Maple Drive",
                       "Station Road", "Victoria Crescent", "Orchard Close", "Queen's Parade", "Mill Lane",
                       "Westbourne Grove", "King Street", "Riverside Way", "Hawthorn Gardens", "Oak Terrace"])
    forms = [f"{n} {street}", f"{n}B {street}", f"Flat {r.randint(1, 30)}, {n} {street}",
             f"Apt {r.randint(1, 30)}C, {n} {street}", f"{n} N. Michigan Ave", f"{n} Sunset Blvd",
             f"Unit {r.randint(1, 9)}/{n} George St", f"Hauptstraße {n}", f"{n} rue de la Paix",
             f"Via Roma {n}", f"Calle Mayor {n}", f"{n}, MG Road", f"{n} Rosewood Court", f"{n} Pine Ridge Rd"]
    return r.choice(forms)


def postcode(r: random.Random) -> str:
    return r.choice(["SW1A 2AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "LS6 3HG", "EH1 1YZ", "W1A 0AX",
                     "NW3 2QG", "BS8 1TH", "G12 8QQ", "CF10 3AT", "OX3 9DU", "L69 3BX", "EC1V 9NR"])


def zipcode(r: random.Random) -> str:
    state = r.choice(["IL", "NY", "CA", "MA", "TX", "WA", "OH"])
    z = f"{r.randint(10000, 99899)}"
    return state, r.choice([z, f"{z}-{r.randint(1000, 9999)}"])


def ip(r: random.Random) -> str:
    return r.choice([f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                     f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}", f"172.16.{r.randint(0, 31)}.{r.randint(2, 250)}",
                     f"2001:db8:{r.randint(1, 9999)}::{r.randint(1, 99)}"])


def url(r: random.Random) -> str:
    last = r.choice(SURNAME).lower().replace("'", "")
    return r.choice([f"https://www.{last}-physio.co.uk/booking", f"http://patients.example.org/p/{r.randint(1000, 99999)}",
                     f"www.{last}family.com", f"https://portal.clinic.com.au/records?id={r.randint(1000, 9999)}",
                     f"https://facebook.com/{last}.{r.randint(10, 99)}"])


SLOTS = {  # slot -> (class, generator)
    "name": ("name", full_name), "surname": ("name", surname), "first": ("name", lambda r: r.choice(FIRST)),
    "caps": ("name", caps_name), "dob": ("dob", dob), "nhs": ("record", nhs), "mrn": ("record", mrn),
    "phone": ("phone", phone), "email": ("email", email), "address": ("address", address),
    "postcode": ("postcode", postcode), "card": ("card", card), "ssn": ("national_id", ssn),
    "nino": ("national_id", nino), "passport": ("national_id", passport), "aadhaar": ("national_id", aadhaar),
    "iban": ("account", iban), "ip": ("ip", ip), "url": ("url", url),
}

TEMPLATES = [
    "Dear Dr {surname},\nThank you for seeing {name}, a 67-year-old man with ((Parkinson's disease)) on ((co-careldopa 25/100 mg)) three times daily.",
    "Patient: {name}\nDOB: {dob}\nHospital No: {mrn}\nNHS No: {nhs}\nDiagnosis: ((Crohn's disease)), ((ICD-10 K50.9)).",
    "Name: {caps}   D.O.B. {dob}   MRN {mrn}\nPresenting complaint: ((chest pain)), ((troponin 14 ng/L)), ((BP 142/88 mmHg)).",
    "Seen today with her daughter {name} (tel {phone}). ((Hodgkin lymphoma)) in remission since ((2019)).",
    "Signed: {name}\nConsultant Gastroenterologist\n((Barrett's oesophagus)) surveillance in ((3 years)).",
    "Kind regards,\n{name}\nSpecialist Nurse, ((Diabetes Care)) Team",
    "Regards,\n{name}",
    "Yours sincerely,\n\nDr {name}\nRegistrar in ((Cardiology))",
    "Nurse {name} administered ((adrenaline 0.5 mg IM)) at ((14:20)); ((Glasgow Coma Scale)) 15/15 thereafter.",
    "Sister {surname} on Ward 7 noted ((SpO2 94%)) on ((2 L/min)) oxygen.",
    "Midwife {name} documented ((Apgar 9)) at 5 minutes; mother's contact number {phone}.",
    "Consultant: {name}. Referred with suspected ((Cushing syndrome)); ((cortisol 620 nmol/L)) at 09:00.",
    "Mr {name}, born {dob}, lives at {address}, {postcode}. Known ((Addison's disease)) on ((hydrocortisone 10 mg)).",
    "Address: {address}, Leeds {postcode}\nNext of kin: {name} ({phone})",
    "The patient ({caps}) was reviewed on the ward round. ((K 4.1 mmol/L)), ((Na 138 mmol/L)), ((eGFR 52)).",
    "Ms {name} can be reached at {email} or {phone}. ((Graves' disease)) treated with ((carbimazole 20 mg)).",
    "Please send the results to {email}. ((HbA1c 58 mmol/mol)) (7.5%); ((metformin 1 g)) twice daily.",
    "SSN: {ssn}. Insurance card on file. ((Hashimoto thyroiditis)), ((levothyroxine 75 micrograms)).",
    "Her social security number is {ssn} and date of birth {dob}. ((Down syndrome)) with ((hypothyroidism)).",
    "National Insurance number {nino}; ((Bell's palsy)) resolving, ((prednisolone 60 mg)) for 5 days.",
    "NI No. {nino} | Passport: {passport} | ((Wilson disease)) (((ceruloplasmin 0.1 g/L))).",
    "Passport number {passport} checked at admission; ((Huntington disease)), ((CAG repeat 42)).",
    "Aadhaar: {aadhaar}. Mobile {phone}. ((Kaposi sarcoma)) on ((doxorubicin 20 mg/m2)).",
    "Paid by card {card}, expiry 09/27. ((Raynaud phenomenon)) - ((nifedipine 5 mg)).",
    "Card number: {card}; please refund the ((£25)) co-payment.",
    "Bank details for the refund: IBAN {iban}.",
    "Login from {ip} flagged; the portal at {url} shows ((Guillain-Barré syndrome)) notes.",
    "Device {ip} uploaded the ECG: ((QTc 452 ms)), ((PR 168 ms)), ((HR 72)).",
    "See the physio booking page {url} for ((Patient Positioning)) exercises.",
    "Mrs {surname} attended ((Patient Education)) on ((Insulin Safety)); follow-up ((Care Plan)) agreed.",
    "Dr {name} (GMC {mrn}) discussed ((Alzheimer's disease)) and ((donepezil 5 mg)) at night.",
    "Prof. {name} recommends ((Whipple procedure)); ((CA 19-9 340 U/mL)).",
    "Ref: Mr {name}, {address}, {state} {zip}. ((Lyme disease)) treated with ((doxycycline 100 mg)).",
    "Mailing address: {address}, Springfield, {state} {zip}. Phone {phone}.",
    "Pt name: {name}; DoB {dob}; UR number {mrn}. ((Kawasaki disease)) - ((IVIG 2 g/kg)).",
    "{caps} (DOB {dob}) admitted with ((Stevens-Johnson syndrome)) after ((lamotrigine)).",
    "Referred by Dr {name}, {address}, {postcode} - tel {phone}, email {email}.",
    "Discharge summary for {name}. Record number {mrn}. ((Sjögren syndrome)), ((hydroxychloroquine 200 mg)).",
    "Patient ID {mrn}: ((Ménière's disease)) with ((betahistine 16 mg)) three times a day.",
    "CHI number {nhs}; GP surgery tel {phone}. ((Wernicke encephalopathy)) - ((thiamine 100 mg)).",
    "Her husband {name} phoned on {phone}: she had a ((Babinski sign)) and ((Romberg)) was positive.",
    "Mother: {name}, mobile {phone}, email {email}. ((Hirschsprung disease)) suspected; ((Bilirubin 45 umol/L)).",
    "Allergies: ((penicillin)). Born {dob} in Lagos. Lives at {address}. ((Sickle cell disease)).",
    "Dear {first},\nYour ((INR 2.6)) is in range (target ((2.0-3.0))); continue ((warfarin 3 mg)).",
    "Thank you for referring {name} (NHS number {nhs}), DOB {dob}, with ((Dupuytren's contracture)).",
    "Interpreter booked for Mr {name}; ((Child-Pugh B)), ((MELD 14)), ((albumin 28 g/L)).",
    "Dictated by: {name}\nTyped by: {name}\ncc: Dr {name}, {address}, {postcode}",
    "Seen by {name}, Consultant Neurologist. ((Multiple Sclerosis)) relapse; ((methylprednisolone 1 g)).",
    "Tel: {phone}  Fax: {phone}  Email: {email}",
    "Attn: {name}, Medical Records, {address}. Re: MRN {mrn}, DOB {dob}.",
    "Patient: {caps}\nD.O.B.: {dob}\nPassport no. {passport}\n((Tuberculosis)) screening: ((Mantoux 12 mm)).",
    "{name}, a 34-year-old, born {dob}, tested positive for ((COVID-19)) (((PCR Ct 24))).",
    "Witness: {name}. Consent for ((Nissen fundoplication)) signed at ((10:15)) on ((2024-03-12)).",
    "Dr. {surname} started ((amoxicillin 500 mg)) three times daily for ((CURB-65)) score 1 pneumonia.",
    "Appointment with Mr {surname} on ((12/05/2024)) at ((09:30)) in ((Outpatients Clinic 4)).",
    "Emergency contact: {name} ({phone}); ((Glasgow)) trauma protocol followed; ((Wells score 4)).",
    "Ms {caps} - ((ECOG 1)), ((BMI 31.2 kg/m2)), ((BP 120/80)), ((Temp 37.8 C)).",
    "Home: {address}, {postcode}. Mobile: {phone}. Work email: {email}.",
    "Parent {name} consents to ((MMR vaccine)) (((0.5 mL))) for their child, DOB {dob}.",
    "Sister {name} reported ((Kernig's sign)) negative; ((lumbar puncture)) opening pressure ((18 cmH2O)).",
    "Following discussion with Mrs {name} and her son {first}, ((DNACPR)) was completed.",
    "Please contact {name} on {phone} regarding the ((Holter monitor)) results (((48 hours))).",
    "Visa/Mastercard {card} declined; ((paracetamol 1 g)) QDS continued.",
    "User {email} accessed the record from {ip}; ((Tourette syndrome)) clinic letter viewed.",
    "Reviewed by {name} (Physician Associate). ((Osgood-Schlatter disease)); ((ibuprofen 400 mg)).",
    "Patient name: {name}\nDate of birth: {dob}\nAddress: {address}\nPostcode: {postcode}\nTel: {phone}",
    "Midwife: {name}\n((Gravida 2 Para 1)), ((32+4 weeks)), ((fundal height 31 cm)), ((Hb 104 g/L)).",
    "ID: {mrn}. ((Epstein-Barr virus)) serology positive; ((ALT 88 U/L)).",
    "{name} MD, Internal Medicine, {address}, {state} {zip}, {phone}",
    "Social Security No. {ssn}; Medicare claim for ((Marfan syndrome)) echo (((aortic root 4.3 cm))).",
    "Her NINO is {nino}. ((Turner syndrome)) reviewed; ((oestradiol 2 mg)).",
    "Passport {passport} (Indian), Aadhaar {aadhaar}, mobile {phone}, ((Dengue)) ((NS1)) positive.",
]

KEEP_ONLY = [  # sentences with nothing to mask; terms in (( )) must survive, and nothing else may be masked
    "((Parkinson's disease)) and ((Alzheimer's disease)) share ((Lewy bodies)) in some patients.",
    "((Hodgkin lymphoma)) is staged with ((PET-CT)); ((ABVD)) for ((6 cycles)).",
    "((Cushing syndrome)) versus ((Cushing's disease)): ((ACTH 85 ng/L)), ((dexamethasone 1 mg)) suppression.",
    "((Patient Positioning)) and ((Patient Safety)) training is mandatory for ((Theatre Staff)).",
    "((Graves' disease)), ((Hashimoto's thyroiditis)) and ((Addison's disease)) are autoimmune.",
    "((Down syndrome)) screening uses ((PAPP-A)) and ((beta-hCG)) at ((11-14 weeks)).",
    "((Bell's palsy)): ((prednisolone 50 mg)) daily for ((10 days)); ((House-Brackmann grade III)).",
    "((Guillain-Barré syndrome)) needs ((FVC)) monitoring every ((4 hours)).",
    "((Apgar score)) ((8)) at 1 minute, ((9)) at 5 minutes; ((birth weight 3.4 kg)).",
    "((Glasgow Coma Scale)) ((E4 V5 M6)); pupils ((3 mm)) and reactive.",
    "((Huntington's disease)), ((Wilson's disease)) and ((Kaposi sarcoma)) were discussed in ((Grand Rounds)).",
    "((Raynaud's phenomenon)) improved with ((amlodipine 5 mg)) once daily.",
    "((BP 120/80)), ((HR 72)), ((RR 16)), ((SpO2 98%)), ((K 4.1 mmol/L)), ((Na 140 mmol/L)), ((Cr 88 umol/L)).",
    "((ICD-10 E11.9)), ((I10)), ((J45.909)), ((N18.3)); ((SNOMED 44054006)).",
    "((Metformin 500 mg)), ((Atorvastatin 40 mg)), ((Ramipril 2.5 mg)), ((Bisoprolol 1.25 mg)).",
    "((Heparin 5000 units)) SC twice daily; ((Enoxaparin 40 mg)) if ((CrCl > 30 mL/min)).",
    "((Warfarin)) dosing: ((INR 2.0-3.0)); ((Vitamin K 10 mg)) IV for major bleeding.",
    "((Platelets 150-400 x10^9/L)); ((WBC 11.2 x10^9/L)); ((CRP 48 mg/L)).",
    "((Child-Pugh C)) cirrhosis; ((MELD-Na 24)); ((Albumin 4.5%)) ((400 mL)).",
    "((Stevens-Johnson syndrome)) and ((Epstein-Barr virus)) are unrelated here.",
    "Follow-up on ((2024-06-01)) at ((10:00)); repeat ((ECG)) and ((Holter monitor)).",
    "((Nurse Education)) session on ((Sepsis Six)) held on ((Ward 12)).",
    "((Care Quality Commission)) and ((NICE NG28)) guidance reviewed; ((Clinical Governance)) meeting.",
    "((Whipple procedure)), ((Nissen fundoplication)), ((Hartmann's procedure)) and ((Roux-en-Y bypass)).",
    "((Foley catheter)) ((14 Fr)); ((Murphy's sign)) positive; ((McBurney's point)) tender.",
    "((Trendelenburg position)) for ((central line)); ((Valsalva manoeuvre)) for ((SVT)).",
    "((Gram stain)): ((Gram-positive cocci)) in clusters; ((Ziehl-Neelsen)) negative.",
    "((Crohn's disease)) on ((infliximab 5 mg/kg)) at weeks ((0, 2 and 6)).",
    "((Tdap 0.5 mL IM)); ((Hepatitis B)) vaccine course completed; ((MMR)) given.",
    "((Pap smear)) normal; ((HPV)) negative; next ((cervical screening)) in ((3 years)).",
    "((Marfan syndrome)) and ((Ehlers-Danlos syndrome)) affect connective tissue.",
    "((Dose 0.5 mg)), ((1:1000)), ((2.5-5 mg)), ((20 mg/m2)), ((1 g/kg)), ((100 mL/hr)).",
    "((St John's wort)) interacts with ((warfarin)) and ((ciclosporin)).",
    "((Barrett's oesophagus)) with ((low-grade dysplasia)); ((omeprazole 40 mg)) twice daily.",
    "((Kawasaki disease)) and ((Henoch-Schönlein purpura)) in ((Paediatrics)).",
    "((QTc 480 ms)) on ((citalopram 40 mg)); reduce to ((20 mg)).",
    "((HbA1c 48 mmol/mol)); ((fasting glucose 6.8 mmol/L)); ((OGTT 11.2 mmol/L)).",
    "((Sjögren's syndrome)), ((Ménière's disease)), ((Paget's disease of bone)).",
    "((Blood Transfusion Safety)) and ((Infection Control)) audits are due in ((March)).",
    "((Wells score 6)), ((D-dimer 1200 ng/mL)), ((CTPA)) booked.",
    "((Stage IIIA)) ((T2 N2 M0)) adenocarcinoma; ((PD-L1 60%)).",
    "((Lithium 400 mg)) nocte; ((lithium level 0.7 mmol/L)); ((TSH 2.1 mU/L)).",
    "((Tourette syndrome)), ((Asperger syndrome)) and ((ADHD)) clinic in ((Room 3)).",
    "((Korsakoff syndrome)) after ((Wernicke encephalopathy)); ((Pabrinex)) given.",
    "((Dr.)) on call: please review the ((Patient Safety)) incident on ((Ward 5)).",
]


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
            identifiers.append({"start": len(text), "end": len(text) + len(value), "kind": kind, "text": value})
            text += value
        elif token.startswith("((") and token.endswith("))"):
            term = token[2:-2]
            keep.append({"start": len(text), "end": len(text) + len(term), "text": term})
            text += term
        else:
            text += token
    return {"text": text, "identifiers": identifiers, "keep": keep}


def generate(seed: int = 19, fills: int = 3) -> list[dict]:
    r = random.Random(seed)
    records = [fill(t, r) for t in TEMPLATES for _ in range(fills)]
    records += [fill(t, r) for t in KEEP_ONLY]
    return [{"id": i, **rec} for i, rec in enumerate(records)]


if __name__ == "__main__":
    rows = generate()
    with OUT.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    n_id = sum(len(row["identifiers"]) for row in rows)
    n_keep = sum(len(row["keep"]) for row in rows)
    print(f"{len(rows)} records, {n_id} identifiers, {n_keep} kept terms -> {OUT}")
