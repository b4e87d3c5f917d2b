"""De-identification of stored and logged text: the targets on the labelled set, and specific behaviours."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_service.ops.privacy import Deidentifier, default_deidentifier, scrub
from qa_service.tooling.deid_eval import (
    DeidReport,
    identifying_words,
    kept_characters,
    load_sentences,
    main,
    removed,
    removed_at,
    run,
)
from tests.conftest import ROOT

SET = ROOT / "tests" / "data" / "deid" / "sentences.jsonl"
FRESH = ROOT / "tests" / "data" / "deid" / "fresh.jsonl"


@pytest.fixture(scope="module")
def reports() -> dict[str, DeidReport]:
    return run(SET)


@pytest.fixture(scope="module", params=["fresh.jsonl", "fresh2.jsonl", "fresh3.jsonl", "fresh4.jsonl", "fresh5.jsonl"])
def fresh(request: pytest.FixtureRequest) -> tuple[str, DeidReport]:
    return request.param, run(FRESH.parent / request.param, halves=False)["all"]


def test_the_set_is_large_split_by_hash_and_labelled_in_place() -> None:
    sentences = load_sentences(SET)
    assert len(sentences) >= 300
    halves = {s.half for s in sentences}
    assert halves == {"tune", "report"}
    assert sum(not s.spans for s in sentences) >= 100  # many carry only medical words


def test_identifier_recall_meets_the_targets(reports: dict[str, DeidReport]) -> None:
    everything = reports["all"]
    assert everything.recall() >= 0.97, everything.missed
    for kind in ("EMAIL", "PHONE", "ID"):
        assert everything.recall([kind]) == 1.0, [m for m in everything.missed if m[0] == kind]


def test_medical_terms_survive(reports: dict[str, DeidReport]) -> None:
    assert reports["all"].medical_kept_rate >= 0.95, reports["all"].lost
    assert not reports["all"].clean_changed


# Recall on each fresh set when it was last measured, rounded down: each was written by another hand
# and first run unseen (0.7227, 0.8919, 0.8556, 0.8221 and 0.8359), then tuned on; docs/benchmarks.md has the figures.
FRESH_FLOORS = {
    "fresh.jsonl": 0.99,
    "fresh2.jsonl": 0.99,
    "fresh3.jsonl": 0.94,
    "fresh4.jsonl": 0.91,
    "fresh5.jsonl": 0.97,
}


def test_the_fresh_sets(fresh: tuple[str, DeidReport]) -> None:
    # E-mail, phone and record numbers are all removed and medical words kept on every set; overall
    # recall is below the 0.97 target on the set tuned on last, so its floor guards against regressions.
    name, report = fresh
    for kind in ("EMAIL", "PHONE", "ID"):
        assert report.recall([kind]) == 1.0, [m for m in report.missed if m[0] == kind]
    assert report.medical_kept_rate >= 0.95, report.lost
    assert report.recall() >= FRESH_FLOORS[name], report.missed
    assert len(report.clean_changed) <= 2, report.clean_changed


def test_the_issues_example() -> None:
    cleaned = scrub("call me at 555-123-4567 or john.smith@example.com, I am John Smith DOB 03/04/1980")
    assert cleaned == "call me at [phone] or [email], I am [name] DOB [date]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my husband Tom Reilly had the same pain", "my husband [name] had the same pain"),
        ("I live at 42 Oak Street, Springfield", "I live at [address], [place]"),
        ("my MRN is 00123456", "my MRN is [number]"),
        ("plate 7ABC123", "plate [vehicle]"),
        ("device serial SN-4471-XK", "device serial [device]"),
        ("I'm 93 and my back hurts", "I'm [age 90+] and my back hurts"),
        ("I'm 45 and my back hurts", "I'm 45 and my back hurts"),  # ages up to 89 are kept
        ("we live in Texas near Austin", "we live in Texas near [place]"),  # states are kept
        ("connect from 192.168.1.45", "connect from [ip]"),
        ("my zip code is 60614", "my zip code is [zip]"),
        # names without a capital or a cue of their own
        ("my husband tom says the heat helps", "my husband [name] says the heat helps"),
        ("my wife says the heat helps", "my wife says the heat helps"),
        ("my daughter snores and her brother keeps coughing", "my daughter snores and her brother keeps coughing"),
        ("had a scan with dr okonjo last week", "had a scan with dr [name] last week"),
        ("the dr said to rest it", "the dr said to rest it"),
        ("wendell here, is the clinic open", "[name] here, is the clinic open"),
        ("anyone here had this?", "anyone here had this?"),
        ("Zoe my daughter fell off her bike", "[name] my daughter fell off her bike"),
        ("my kids Noah and Ava have growing pains", "my kids [name] and [name] have growing pains"),
        ("Olumide Adeyemi needs a note for work", "[name] needs a note for work"),
        ("we're the Hendersons from Ohio", "we're the [name] from Ohio"),
        # places, addresses and the rest
        ("my address is 42 Oak Street, Burlington 05401", "my address is [address], [place] [zip]"),
        ("send it to 7 Mill Close, Ashby", "send it to [address], [place]"),
        ("I live at 19 birchwood ave now", "I live at [address] now"),
        ("I live at 310 East 9th Street", "I live at [address]"),
        ("motorcycle plate MC 44821", "motorcycle plate [vehicle]"),
        ("the car is YT62 KLM", "the car is [vehicle]"),
        ("ring 0161 496 0000 ext 31", "ring [phone]"),
        ("she's 97 and frail", "she's [age 90+] and frail"),
        ("my grandad (92) is frail", "my grandad ([age 90+]) is frail"),
        ("he is ninety three", "he is [age 90+]"),
        ("the scan is on thursday 14th", "the scan is on [date]"),
        # given names from the bundled list, where the words around say they are names
        ("can i bring siobhan to my appointment with Dr Lee", "can i bring siobhan to my appointment with Dr [name]"),
        ("Priyanka has had a rash for a week", "[name] has had a rash for a week"),
        ("grace has a temperature again", "[name] has a temperature again"),
        ("i came in with Thandiwe yesterday", "i came in with [name] yesterday"),
        ("hey its niamh, the cream worked", "hey its [name], the cream worked"),
        ("ask nurse rhiannon jones to ring me", "ask nurse [name] to ring me"),
        ("dr will said it would settle", "dr [name] said it would settle"),
        ("the dr will call you back", "the dr will call you back"),
        ("Ji-ho needs his inhaler renewed", "[name] needs his inhaler renewed"),
        ("kwame and efua both have a cough", "[name] and [name] both have a cough"),
        ("Dr Parkinson says it is a benign tremor", "Dr [name] says it is a benign tremor"),
        ("my son Addison, 7, has asthma", "my son [name], 7, has asthma"),
        # places from the bundled list, and a practice named after its place
        ("is there a clinic near Kidderminster", "is there a clinic near [place]"),
        ("i work in croydon most days", "i work in [place] most days"),
        ("is Dr Khan still at the Edgbaston practice", "is Dr [name] still at the [place] practice"),
        # dates without a year; postcodes and addresses of other countries
        ("the letter says 07/09 for the scan", "the letter says [date] for the scan"),
        ("my smear is booked on the 3rd", "my smear is booked on the [date]"),
        ("she was born on Boxing Day 2018", "she was born on [date]"),
        ("we are at 22 Main St, Halifax NS B3H 1A1", "we are at [address], [place] NS [zip]"),  # provinces may stay
        ("post it to 5 Hill Road, Bendigo VIC 3550", "post it to [address], [place] VIC [zip]"),
        ("deliver to Ivy Cottage, Station Road please", "deliver to [address] please"),
        ("my nan (Edna, 94) fell", "my nan ([name], [age 90+]) fell"),
        ("medicare number 4412 55601 2 please", "medicare number [number] please"),
        ("my aunt Edith, 93, lives alone", "my aunt [name], [age 90+], lives alone"),
        ("4 ferndale close, wigan is where she lives", "[address], [place] is where she lives"),
        ("oluwaseun needs his inhaler renewed", "[name] needs his inhaler renewed"),
        ("the inhaler works now, thanks so much, niamh", "the inhaler works now, thanks so much, [name]"),
        ("from: lena fischer <lf@example.org> re repeat script", "from: [name] <[email]> re repeat script"),
        ("grandpa otto fell last night", "grandpa [name] fell last night"),
        ("hey its will, can i get my repeat", "hey its [name], can i get my repeat"),
        ("we saw dr khan about the rash", "we saw dr [name] about the rash"),
        ("Age: 93. Condition: leg ulcer", "Age: [age 90+]. Condition: leg ulcer"),
        ("post it to 12 Harbour Parade, Timaru 7910", "post it to [address], [place] [zip]"),
        ("malik osei here, the cream worked", "[name] here, the cream worked"),
        ("my hospital no. is KTH/40213 for the refill", "my hospital no. is [number] for the refill"),
        ("the medicare card number is 4417 29051 2", "the medicare card number is [number]"),
        ("NHI ZXC 4821, repeat of Losec", "NHI [number], repeat of Losec"),
        ("she had the fall on the seventh of may", "she had the fall on [date]"),
        ("off sick 3 to 5 March with gastro", "off sick [date] with gastro"),
        ("is my scan still on for the thirty-first?", "is my scan still on for the [date]?"),
        ("born eleventh of june nineteen fifty one", "born [date]"),
        ("a grey corolla KJD 714 ZP is parked across the ramp", "a grey corolla [vehicle] is parked across the ramp"),
        ("my aunty Fetu turns ninety next week", "my aunty [name] turns [age 90+] next week"),
        ("we live at 9 Voortrekkerweg, Worcester 6850", "we live at [address], [place] [zip]"),
        ("our flat is 3/18 Rata Street in Timaru", "our flat is [address] in [place]"),
        ("i reside at No 7 Bode Thomas, Surulere", "i reside at [address], [place]"),
        ("im in leeds for the week, can i get my pill here", "im in [place] for the week, can i get my pill here"),
        ("seen at Dunedin Hospital last year", "seen at [place] last year"),
        ("we're in Cabramatta 2166, near the station", "we're in [place] [zip], near the station"),
        ("thanks for the help. Rhiannon Pryce", "thanks for the help. [name]"),
        ("the rash is back - Olumide", "the rash is back - [name]"),
        ("Best wishes,\nSiobhán", "Best wishes,\n[name]"),
        ("me and chiamaka both have the flu", "me and [name] both have the flu"),
        ("my son will has a cough", "my son [name] has a cough"),
        (
            "my surname is Crohn and the bot keeps sending me bowel advice",
            "my surname is [name] and the bot keeps sending me bowel advice",
        ),
        ("Dear Dr Adeyemi-Jones, thank you", "Dear Dr [name], thank you"),
        ("my gf Summer has migraines", "my gf [name] has migraines"),
    ],
)
def test_each_identifier_type(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Flexeril did nothing for my sciatica at L5",
        "the Dr. on call said to take Lyrica 75 mg",
        "Celebrex or Advil for C5-C6 stenosis and T12 fracture",
        "McKenzie exercises for a Baker's cyst behind the knee",
        "you may need physical therapy in may",
        # eponyms, brands and numbers that look like names, places or dates
        "I have Sjögren's and dry eyes",
        "was it Kawasaki disease or Still's disease",
        "GP thinks Ménière's, is betahistine any good",
        "I hope it is not Bell's palsy",
        "is Ventolin or Clenil better for a child",
        "pain is 7/10 and my BP was 140/90",
        "take 1/2 a tablet on 24/7 oxygen",
        "the 2nd dose of Shingrix made me ill",
        "can I take Allegra with Zoloft",
        "my sats were 94, 95, 96 today",
        "deadlifts hurt my lower back",
        "carpal tunnel since the baby, splint isn't helping",
        "will physio fix my posture",
        "does the Glasgow coma scale get done here",
        "my dad hit his head on the cupboard",
        "the pain goes into my right buttock and i cant sit",
        "can you catch Lassa fever or Rocky Mountain spotted fever in Europe",
        "are mosquito bites a worry on chemo",
        "the ECG showed ST changes",
        "we went to Australia and Singapore last year",
    ],
)
def test_medical_words_survive(text: str) -> None:
    assert scrub(text) == text


def test_the_patterns_work_without_the_model() -> None:
    assert Deidentifier().scrub("email jane@x.org, DOB 1/2/1950") == "email [email], DOB [date]"


def test_a_title_and_street_words_may_stay_but_no_identifying_word() -> None:
    assert removed("Dr. Alvarez", "NAME", "please have Dr. [name] call me")
    assert not removed("Tom Reilly", "NAME", "my husband Tom [name]")
    assert removed("93", "AGE", "I'm [age 90+]")


def test_an_identifier_counts_as_removed_where_it_stood() -> None:
    text = "i read on www.nhs.uk/conditions/sciatica that walking helps sciatica"
    scrubbed = "i read on [link] that walking helps sciatica"
    url = (10, 40, "URL")
    assert removed_at(text, url, scrubbed, kept_characters(text, scrubbed))  # the other "sciatica" is not it
    name = "mark has had a red mark"
    assert not removed_at(name, (0, 4, "NAME"), name, kept_characters(name, name))
    split = "my ex Darren Mitchell called"
    assert removed_at(
        split, (6, 21, "NAME"), "my ex [name] [name] called", kept_characters(split, "my ex [name] [name] called")
    )
    assert not removed_at(
        split, (6, 21, "NAME"), "my ex [name] Mitchell called", kept_characters(split, "my ex [name] Mitchell called")
    )
    assert kept_characters("a b", "<PERSON> b") is None  # another scrubber's placeholders: words anywhere


def test_words_that_count_for_each_kind() -> None:
    assert identifying_words("ninety six", "AGE") == ["ninety", "six"]  # no digits: every word counts
    assert identifying_words("January 2025", "DATE") == ["January", "2025"]  # the month identifies
    assert identifying_words("the 3rd of March", "DATE") == ["3rd", "March"]
    assert identifying_words("020 7946 0018 ext 204", "PHONE") == ["020", "7946", "0018", "204"]
    assert identifying_words("MC 44821", "VEHICLE") == ["MC", "44821"]


def test_the_fresh_sets_record_numbers_are_read_as_id(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "member number BCB-99120-01", "spans": [{"start": 14, "end": 26, "type": "RECORD"}]}\n')
    assert load_sentences(path)[0].spans == [(14, 26, "ID")]


def test_the_model_loads_once() -> None:
    deidentifier = default_deidentifier()
    deidentifier.load()
    names = deidentifier.names
    deidentifier.load()
    assert default_deidentifier() is deidentifier and deidentifier.names is names


def test_the_command_prints_both_halves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", str(SET)]) == 0
    out = capsys.readouterr().out
    assert "tune" in out and "report" in out and "medical terms kept" in out
