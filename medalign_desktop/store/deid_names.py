"""Person names for :mod:`deid`: only where a cue says a name follows, never "any capitalised word".

Cues: a title or role ("Dr", "Mrs", "Nurse", "Sister", "Midwife", "Consultant"), a label ("Patient:",
"Name:", "Next of kin:", "Signed:", "Dictated by"), a relative ("her daughter"), a greeting or sign-off
("Dear", "Regards,\\n"), an all-caps surname before a given name ("SMITH, John"), a post-nominal ("MD",
"MBBS"), or an age after the name ("Jane Doe, a 34-year-old"). A name found by a cue is then masked wherever
else it appears in the same text. A name with no cue at all is not found: the manifest says so.

The allow list keeps eponyms and clinical capitalised words ("Patient Positioning", "Hodgkin lymphoma",
"Dr. Crohn" style ambiguity resolved in favour of the disease): a word in it ends a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from medalign_desktop.store.deid_backends import Span

# Eponyms used bare ("Parkinson's", "Crohn's"). Eponyms that are also common surnames (Wilson, Bell, Smith,
# Baker) are not here: they are kept by _EPONYM_NEXT when a disease word follows, and masked after a title.
EPONYMS = frozenset(
    "Parkinson Parkinsons Alzheimer Alzheimers Crohn Crohns Hodgkin Hodgkins Cushing Cushings Addison Addisons "
    "Graves Hashimoto Hashimotos Down Downs Huntington Huntingtons Kaposi Raynaud Raynauds Guillain Barré "
    "Barre Apgar Glasgow Barrett Barretts Ménière Meniere Menieres Sjögren Sjogren Sjögrens Tourette Tourettes "
    "Asperger Aspergers Wernicke Korsakoff Epstein Lyme Marfan Klinefelter Paget Pagets Dupuytren Dupuytrens "
    "Osgood Schlatter Hirschsprung Meckel Meckels Whipple Whipples Nissen Foley Babinski Romberg Kernig "
    "Kernigs Brudzinski Trendelenburg Valsalva Heimlich Gram Ziehl Neelsen Pap Pugh Kawasaki Henoch Schönlein "
    "Schonlein Ehlers Danlos Hartmann Hartmanns McBurney McBurneys Lewy Bence Cheyne Kussmaul Virchow "
    "Horner Horners Sequard Munchausen Reye Reyes Tay Sachs Gaucher Fabry Pompe Niemann Wolff "
    "Brugada Takotsubo Gleason Breslow Fallot Eisenmenger Doppler Ganz Seldinger Hickman Broviac Guedel Magill "
    "Macintosh Mantoux Heaf Coombs Schilling Tensilon Eaton Creutzfeldt Jakob Gerstmann Bartter Gitelman "
    "Zollinger Ellison Peutz Jeghers Boerhaave Vinson Zenker Zenkers Virchows Trousseau Chvostek Tinel Phalen "
    "Finkelstein Lachman McMurray Ortolani Galeazzi Perthes Scheuermann Kienböck Monteggia Gustilo Hangman "
    "Kaposis Burkitt Burkitts Ewing Ewings Wilms Merkel Hürthle Krukenberg Pancoast Sézary Waldenström Kahler "
    "Castleman Behçet Behcet Buerger Takayasu Wegener Churg Strauss Goodpasture Alport Berger Fanconi Blackfan "
    "Soulier Glanzmann Willebrand Hageman Wiskott Aldrich DiGeorge Chediak Higashi Kostmann Duchenne Erb "
    "Klumpke Chiari Sturge Hippel Lindau Rett Angelman Prader Willi Noonan Patau Apert Crouzon Treacher Dubin "
    "Crigler Najjar Rotor Budd Caroli Alagille Zellweger Refsum Krabbe Canavan Hurler Sanfilippo Morquio "
    "Maroteaux Lesch Nyhan Menkes Cori McArdle Tarui Von Gierke Kartagener Mendelson Legionnaires Legionella "
    "Hib Ebola Zika Marburg Lassa Hendra Nipah Coxsackie Norwalk Rotavirus Epley Dix Hallpike Rinne Snellen "
    "Ishihara Amsler Rovsing Psoas Obturator Blumberg Courvoisier Kussmauls Ranson Blatchford Rockall Centor "
    "Geneva Padua Caprini Waterlow Braden Barthel Folstein Bayley Mallampati Cormack Lehane Killip Forrester "
    "Spetzler Bamford Hachinski Karnofsky Lansky Zubrod ECOG Charlson Elixhauser Clavien Dindo Lund Browder "
    "Baux".split()
)
# Capitalised clinical and letter words that follow titles and cues without being names.
CLINICAL_WORDS = frozenset(
    "Patient Patients Pt Positioning Safety Care Education Information History Consent Notes Note Leaflet "
    "Group Advice Instructions Summary Details Age Sex Name Number Record Records Id ID No Team Staff Services "
    "Service Plan Plans Review Reviews Transport Liaison Experience Participation Pathway Pathways Portal "
    "Charter Survey Feedback Forum Panel Flow Tracking List Lists Register Identifier Identification "
    "Assessment Discharge Admission Referral Medication Medications Allergy Allergies Diagnosis Diagnoses "
    "Treatment Management Quality Governance Infection Control Prevention Protection Blood Transfusion "
    "Theatre Theatres Ward Wards Clinic Clinics Department Unit Room Bay Bed Outpatients Inpatients Emergency "
    "Intensive Critical High Dependency Acute Medical Surgical Clinical Nursing Nurse Nurses Midwife Midwives "
    "Midwifery Doctor Doctors Consultant Consultants Registrar Registrars Physician Physicians Surgeon "
    "Surgeons Specialist Specialists Practitioner Practitioners Associate Associates Assistant Assistants "
    "Sister Matron Manager Lead Leads Director Officer Coordinator Educator Therapist Therapists Pharmacist "
    "Pharmacists Pharmacy Physio Physiotherapy Physiotherapist Dietitian Psychologist Psychiatrist Radiographer "
    "Sonographer Paramedic Paramedics Healthcare Health Social Mental Public General Internal Family Primary "
    "Secondary Tertiary Community District Practice Centre Center Hospital Hospitals Trust Board Committee "
    "Insulin Sepsis Diabetes Diabetic Cardiac Cardiology Oncology Neurology Neurologist Gastroenterology "
    "Gastroenterologist Cardiologist Oncologist Radiology Radiologist Haematology Hematology Nephrology "
    "Urology Dermatology Rheumatology Endocrinology Respiratory Renal Stroke Trauma Orthopaedics Orthopedics "
    "Paediatrics Pediatrics Obstetrics Gynaecology Gynecology Geriatrics Anaesthetics Anesthesia Psychiatry "
    "Pathology Microbiology Virology Immunology Palliative Rehabilitation Rehab Maternity Neonatal Neonatology "
    "Grand Rounds Round Handover Shift Day Night Morning Evening Week Weekly Daily Today Tomorrow Yesterday "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July "
    "August September October November December Sir Madam Colleague Colleagues All Team Everyone Parents "
    "Parent Carer Carers Guardian Family Relatives Relative Next Kin On Call Duty Reg SHO FY1 FY2 ST3 GP GPs "
    "The A An This That These Those With Without And Or Is Was Were Are Be Been Has Have Had To From For Of In "
    "At By As If It Its He She They His Her Their Our We You Your I Me My Not No Yes Please Thank Thanks Re "
    "See Seen Also Then Now Only Both Either Neither Each Every Any Some Other Another Same Such Very More "
    "Most Less Least New Old First Second Third Last Next Previous Further Following Dear Kind Regards "
    "Sincerely Faithfully Yours Best Wishes Many Signed Signature Dictated Typed Reviewed Approved Verified "
    "Checked Reported Authorised Authorized Copy Copies Attached Enclosed Ref Date Time Tel Phone Fax Email "
    "Mobile Address Postcode Unknown Anonymous Withheld Redacted Consent Capacity Interpreter Chaperone "
    "Witness Advocate Mr Mrs Ms Miss Dr Prof Professor Mx Died Led Run Based Lives Lived Presented Reported "
    "Denies Attended Attends Works Worked Passed Stable Well Unwell".split()
)
# Verbs that start a clause after a role ("the doctor Prescribed"), and common drug names, which a note may
# capitalise right after a cue ("Practitioner Metformin review").
CLAUSE_AND_DRUG_WORDS = frozenset(
    "Prescribed Required Requested Administered Gave Given Started Stopped Advised Noted Confirmed Agreed "
    "Informed Called Escalated Documented Recommended Declined Refused Discussed Explained Arranged Booked "
    "Surgery Crew Service Services Office Desk Line Bleep Pager Rota Handbook Guidelines Guideline Protocol "
    "Paracetamol Acetaminophen Ibuprofen Naproxen Diclofenac Aspirin Codeine Morphine Oxycodone Tramadol "
    "Fentanyl Metformin Gliclazide Insulin Sitagliptin Empagliflozin Dapagliflozin Atorvastatin Simvastatin "
    "Rosuvastatin Amlodipine Ramipril Lisinopril Losartan Candesartan Bisoprolol Metoprolol Atenolol "
    "Furosemide Bumetanide Spironolactone Bendroflumethiazide Indapamide Warfarin Apixaban Rivaroxaban "
    "Edoxaban Dabigatran Heparin Enoxaparin Clopidogrel Ticagrelor Digoxin Amiodarone Levothyroxine "
    "Carbimazole Prednisolone Prednisone Hydrocortisone Dexamethasone Methylprednisolone Omeprazole "
    "Lansoprazole Pantoprazole Ranitidine Ondansetron Metoclopramide Cyclizine Amoxicillin Co-amoxiclav "
    "Flucloxacillin Clarithromycin Azithromycin Doxycycline Ciprofloxacin Levofloxacin Trimethoprim "
    "Nitrofurantoin Cefalexin Ceftriaxone Gentamicin Vancomycin Metronidazole Tazocin Meropenem Aciclovir "
    "Oseltamivir Salbutamol Ipratropium Tiotropium Budesonide Fluticasone Montelukast Sertraline Citalopram "
    "Fluoxetine Mirtazapine Amitriptyline Venlafaxine Duloxetine Quetiapine Olanzapine Risperidone "
    "Haloperidol Lorazepam Diazepam Midazolam Zopiclone Gabapentin Pregabalin Levetiracetam Lamotrigine "
    "Valproate Carbamazepine Phenytoin Lithium Donepezil Memantine Levodopa Co-careldopa Sinemet Madopar "
    "Allopurinol Colchicine Methotrexate Hydroxychloroquine Sulfasalazine Adalimumab Infliximab Tamsulosin "
    "Finasteride Sildenafil Adrenaline Epinephrine Noradrenaline Atropine Naloxone Tranexamic Vitamin "
    "Ferrous Folic Thiamine Pabrinex Calcium Magnesium Potassium Sodium Chloride Glucose Dextrose Saline "
    "Hartmann's Albumin Oxygen Entonox".split()
)
ALLOW = EPONYMS | CLINICAL_WORDS | CLAUSE_AND_DRUG_WORDS
_ALLOW_FOLD = frozenset(word.casefold() for word in ALLOW)
# Capitalised words after which the candidate is an eponym, not a person: "Wilson disease", "Bell's palsy".
_EPONYM_NEXT = re.compile(
    r"['’]?s?\s+(?:disease|syndrome|sign|signs|palsy|lymphoma|sarcoma|phenomenon|procedure|test|score|scale|"
    r"criteria|classification|reflex|manoeuvre|maneuver|position|catheter|tube|line|stain|smear|fracture|"
    r"operation|repair|incision|contracture|oesophagus|esophagus|thyroiditis|encephalopathy|ulcer|cyst|"
    r"tumou?r|node|nodes|virus|cells?|bodies|body|triad|law|point|equation|formula|angle|curve|murmur|"
    r"method|protocol|grade|stage|type|variant|block|bundle|wort|nodules?|tear|chorea|fever|aneurysm|hernia|"
    r"anomaly|malformation|diverticulum|pouch|spots?|rings?|knot|splint|leuka?emia|neuralgia|neuroma|"
    r"arteritis|dystrophy|ataxia|paralysis|apno?ea|breathing|respiration|rhythm|waves?|complex|ligament|"
    r"duct|glands?|canal|loop|space|area|chorea|lesions?|granulomatosis|vasculitis|anaemia|anemia)\b",
    re.IGNORECASE,
)
# Common all-caps words and acronyms that precede a comma in notes ("PLAN, Continue..."), never surnames.
_CAPS_STOP = frozenset(
    "NOTE NOTES PLAN HISTORY DIAGNOSIS ASSESSMENT IMPRESSION EXAMINATION EXAM SUMMARY RESULTS RESULT "
    "MEDICATIONS MEDICATION ALLERGIES ALLERGY SOCIAL FAMILY PAST PMH HPI ROS DDX DX RX TX HX SX FHX SHX "
    "BP HR RR SPO2 ECG EKG CT MRI PET USS CXR AXR FBC CBC UE LFT LFTS CRP ESR INR APTT PT TSH HBA1C COPD CKD "
    "AKI MI STEMI NSTEMI ACS PE DVT UTI TIA CVA AF SVT VT VF CPR DNACPR DNR ICU ITU HDU ED AE OPD GP NHS "
    "NICE WHO CDC FDA MHRA BNF IV IM SC PO PR NG NJ OD BD TDS QDS PRN NBM ECOG BMI GCS AVPU NEWS MEWS PEWS "
    "SOAP SBAR ABCDE OK NO YES NB PS PPS URGENT IMPORTANT CONFIDENTIAL ADDENDUM UPDATE ADVICE ACTION ACTIONS "
    "MEDICAL SURGICAL CLINICAL DISCHARGE ADMISSION REFERRAL LETTER REPORT OBS VITALS LABS BLOODS IMAGING "
    "COVID HIV HBV HCV MRSA CDIFF TB RSV EBV CMV HPV HSV VZV MMR DTP BCG MRN DOB NI NINO SSN ID UR URN CHI "
    "PIN ZIP NOK DNI NIE PAN TFN IHI GMC NMC NPI TEL FAX REF RE CC ATTN PT MD DO MBBS MBCHB BMBS FRCP MRCP "
    "FRCS MRCS FRCGP MRCGP FRACP FRCPC RN RGN RMN RM NP PHD DPHIL BSC MSC DNP APRN FNP FY1 FY2 SHO SPR".split()
)

_UP, _LOW = "A-ZÀ-ÖØ-ÞĀ-Ž", "a-zß-öø-ÿĀ-ž"  # Latin-1 and Latin Extended-A: Åsa Öberg, Łukasz, Siobhán
_WORD = (
    rf"(?:[{_UP}]['’])?(?:Mc|Mac)?[{_UP}][{_LOW}]+"  # Smith, O'Brien, McAllister; then -Byron, -MacLeod, -Ó'Neil
    rf"(?:-(?:[{_UP}]['’])?(?:Mc|Mac)?[{_UP}][{_LOW}]+|['’][{_UP}][{_LOW}]+)*"
    rf"|[{_UP}]{{2,}}(?:[-'’][{_UP}]{{2,}})*"  # SMITH, O'NEIL
    rf"|[{_UP}]\.(?:[ ]?[{_UP}]\.)*"  # J., J.R.
)
_PARTICLE = r"(?:van|von|der|den|de|del|della|di|da|dos|das|du|la|le|ter|ten|bin|binti|ibn|al|el|zu|af|y)"
_NAME = rf"(?:{_PARTICLE}[ \t]+){{0,2}}(?:{_WORD})(?:[ \t]+(?:{_PARTICLE}[ \t]+){{0,2}}(?:{_WORD})){{0,4}}"
_TITLE = (
    r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Mstr|Master|Prof|Professor|Doctor|Sr|Sir|Dame|Lady|Lord|Rev|Revd|Fr|Pt|Patient|"
    r"Nurse|Sister|Matron|Midwife|Consultant|Registrar|Surgeon|Physician|Pharmacist|Therapist|"
    r"Physiotherapist|Paramedic|Mother|Father|Parent|Guardian|Carer|Witness|Interpreter|"
    # European and Indian forms of address: Herr, Frau, Mme, Sig.ra, Sra., Dott.ssa, Dhr., Mevr., Pan, Smt.
    r"Herr|Frau|Hr|Fr|Mme|Mlle|Madame|Monsieur|M(?=\.)|Sig|Sig\.ra|Signora|Signor|Sra|Srta|Doña|Dott|Dott\.ssa|"
    r"Dhr|Mevr|Pan|Pani|Shri|Smt|Kumari)\.?"
)
_LABEL = (
    r"(?i:patient(?:'s)?(?:\s+full)?\s*name|pt\s*name|full\s+name|name|surname|forenames?|first\s+name|"
    r"last\s+name|given\s+names?|family\s+name|patient|pt|client|signed|signature|sign(?:ed)?\s+off\s+by|"
    r"dictated\s+by|typed\s+by|transcribed\s+by|reviewed\s+by|seen\s+by|examined\s+by|assessed\s+by|"
    r"authori[sz]ed\s+by|reported\s+by|verified\s+by|approved\s+by|checked\s+by|referred\s+by|referrer|"
    r"referring\s+clinician|requested\s+by|witness|interpreter|consultant|gp|doctor|clinician|nurse|midwife|"
    r"author|next\s+of\s+kin|nok|emergency\s+contact|contact|mother|father|parent|guardian|carer|"
    r"resident|attending|intern|fellow|registrar|surgeon|physician|an(?:a)?esthetist|pharmacist|therapist|"
    r"physio|physiotherapist|dietitian|dietician|psychologist|psychiatrist|radiographer|sonographer|"
    r"optometrist|counsell?or|social\s+worker|occupational\s+therapist|key\s+worker|care\s+coordinator|"
    r"sho|fy1|fy2|spr|scribe|chaperone|"
    r"husband|wife|partner|spouse|attn|attention|cc|to|from|re|dear|c/o)"
)
_RELATIVE = (
    r"(?i:(?:(?:her|his|their|the\s+patient's|patient's|my|your)\s+)?(?:husband|wife|partner|spouse|daughter|son|"
    r"mother|father|mum|dad|sister|brother|carer|friend|neighbour|neighbor|niece|nephew|grandson|"
    r"granddaughter|aunt|uncle|cousin|fiancée?|boyfriend|girlfriend|child|children))"
)
_VERB = (
    r"(?i:seeing|saw|referring|reviewing|reviewed|examined|discharging|discharged|admitting|admitted|visited|"
    r"contact|contacted|call|called|phoned|telephoned|rang|emailed|informed|told|asked|met|thank|thanked|"
    r"spoke\s+(?:to|with)|discussed\s+with|accompanied\s+by|(?:seen|reviewed|examined|assessed|dictated|typed|"
    r"signed|authori[sz]ed|reported|verified|approved|checked|referred|requested|written|prepared|triaged|"
    r"operated\s+on|treated|consented|countersigned)\s+by)"
)
# A role in lower case, with a grade or a specialty: "Staff nurse Kelly", "Consultant obstetrician Maeve".
_ROLE = (
    r"(?i:(?:(?:staff|charge|specialist|senior|junior|ward|practice|community|district|clinical|research|"
    r"theatre|scrub|lead|duty|named|student|agency|bank|on-call)[ \t]+)?"
    r"(?:nurse|sister|midwife|consultant|registrar|doctor|physician|surgeon|anaesthetist|anesthetist|"
    r"pharmacist|therapist|physiotherapist|paramedic|practitioner|matron|GP|SHO|SpR|house\s+officer)"
    r"(?:[ \t]+[a-z]+(?:ician|ologist|iatrist|geon|ist|ian))?)"
)
# Labels that may be followed by a dash or just a space ("Name - Grace", "Patient name Omar", "Signed Amit").
_LOOSE_LABEL = (
    r"(?i:(?:patient|pt|full|family|given|legal|preferred|maiden|birth)\s+names?|surname|forenames?|signed|"
    r"signature|known\s+as|identifies\s+as|prefers\s+to\s+be\s+called|a\.?k\.?a\.?)"
)
_CUED = re.compile(
    rf"(?:\b{_TITLE}[ \t]+|\b{_LABEL}[ \t]*:[ \t]*|\b(?i:dear)[ \t]+|\b{_ROLE}[ \t]+"
    rf"|\b{_LOOSE_LABEL}[ \t]+(?:[-–][ \t]+)?|\b(?i:name)[ \t]+[-–][ \t]+"
    rf"|\b{_RELATIVE}[,:]?[ \t]*\(?[ \t]*|\b{_VERB}[ \t]+|\b[SDWC]/[Oo][.:]?[ \t]+"  # W/o, S/o: wife / son of
    r"|\b(?i:summary|letter|referral|report|notes?)\s+(?i:for|on|re)[ \t]+"
    r"|(?i:regards|sincerely|faithfully|best\s+wishes|many\s+thanks|thanks|cheers),?[ \t]*\n\s*"
    rf")(?:{_TITLE}[ \t]+)?(?P<v>{_NAME})"  # "Dear Dr Patel", "cc: Mrs Jones": the title is a cue too
)
# "Patient: Hernandez, Maria": surname, comma, given names, after a label (only there: elsewhere a comma
# after a name starts the next item).
_LABELLED_SURNAME_FIRST = re.compile(
    rf"\b{_LABEL}[ \t]*:[ \t]*(?P<v>(?:{_WORD})(?:[ \t]+(?:{_WORD})){{0,2}},[ \t]*(?:{_WORD})(?:[ \t]+(?:{_WORD})){{0,2}})"
)
_CAPS_FIRST = re.compile(rf"(?<![\w'’])(?P<v>(?:[{_UP}]['’])?[{_UP}]{{2,}}(?:[-'’ ][{_UP}]{{2,}}){{0,2}},[ \t]*[{_UP}][{_LOW}]+"
                         rf"(?:[ \t]+[{_UP}][{_LOW}]+)?)")  # fmt: skip
_POST_NOMINAL = re.compile(
    rf"(?<![\w'’])(?P<v>{_NAME}),?[ \t]+(?=(?:MD|DO|MBBS|MBChB|MB ChB|BMBS|FRCP|MRCP|FRCS|MRCS|FRCGP|MRCGP|"
    r"FRACP|FRCPC|RN|RGN|RMN|RM|NP|PA-C|PhD|DPhil|BSc|MSc|DNP|APRN|FNP)\b)"
)
_AGED = re.compile(
    rf"(?:^|(?<=\n)|(?<=\.\s)|(?<=:\s))(?P<v>{_NAME})(?=,?\s+(?:is\s+)?(?:a|an|aged)\s+\d{{1,3}}[- ]?(?:year|yr|y/o|month|week)|,\s*\d{{1,3}}\s*(?:,|y\b|yo\b|y/o|yrs?\b|years?\b|[MF]\b))"
)
_ROLE_SUFFIX = re.compile(r"(?:olog(?:ist|ists|y|ical)|iatri(?:st|sts|cs|cian|cians|y)|ician|icians|ologie)$")
_TOKEN = re.compile(rf"{_WORD}|{_PARTICLE}")


def _is_name_word(word: str) -> bool:
    bare = word.strip(".'’").replace("’", "'")
    if bare.endswith("'s"):
        bare = bare[:-2]
    if _ROLE_SUFFIX.search(bare):  # Rheumatologist, Paediatrician, Haematology: roles and specialties
        return False
    return bare.casefold() not in _ALLOW_FOLD and bare.replace("'", "").casefold() not in _ALLOW_FOLD


def _trim(text: str, start: int, value: str, require_full: bool = False) -> Span | None:
    """The leading name words of ``value`` (stopping at the first allowed word); None if none are a name."""
    end = start
    words = 0
    for token in _TOKEN.finditer(value):
        word = token.group()
        if re.fullmatch(_PARTICLE, word):
            continue  # a particle belongs to the name only if a name word follows it
        initial = re.fullmatch(rf"[{_UP}]\.(?:[ ]?[{_UP}]\.)*", word) is not None  # "A." is not the article
        if (
            not initial
            and not _is_name_word(word)
            or (word.isupper() and len(word) > 1 and word in _CAPS_STOP)
        ):
            if require_full:
                return None
            break
        end = start + token.end()
        words += 1
    if not words:
        return None
    name = text[start:end]
    if all(re.fullmatch(rf"[{_UP}]\.", w) for w in name.split()):  # "Dr. J." alone: too little to be a name
        return None
    if _EPONYM_NEXT.match(text, end):  # "Wilson disease", "Bell's palsy": the person is long dead
        return None
    return start, end, "name"


def name_spans(text: str) -> Iterator[Span]:
    found: list[Span] = []
    for match in _LABELLED_SURNAME_FIRST.finditer(text):
        span = _trim(text, match.start("v"), match.group("v").replace(",", " "), require_full=True)
        if span:
            found.append(span)
    for pattern in (_CUED, _POST_NOMINAL, _AGED):
        for match in pattern.finditer(text):
            span = _trim(text, match.start("v"), match.group("v"))
            if span:
                found.append(span)
    for match in _CAPS_FIRST.finditer(text):
        surname = match.group("v").split(",")[0]
        if all(part not in _CAPS_STOP for part in re.split(r"[-'’ ]", surname)):
            span = _trim(text, match.start("v"), match.group("v").replace(",", " "), require_full=True)
            if span:
                found.append(span)
    yield from found
    yield from _repeats(text, found)


def _repeats(text: str, found: list[Span]) -> Iterator[Span]:
    """Other mentions of a name already found by a cue ("Mrs Jane Doe ... Jane said"), as whole words."""
    words = {
        word.strip(".,")
        for start, end, _ in found
        for word in re.split(r"[ \t]+", text[start:end])
        if len(word.strip(".,")) >= 3 and not word.endswith(".") and _is_name_word(word)
    }
    words -= {w for w in words if w.islower()}
    if not words:
        return
    pattern = re.compile(r"(?<![\w'’\-])(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
                         + r")(?![\w\-]|['’][a-rt-z])")  # fmt: skip
    for match in pattern.finditer(text):
        if not _EPONYM_NEXT.match(text, match.end()):
            yield match.start(), match.end(), "name"
