"""Intake de-duplication against a large suite: build the index once, then time each item.

50,000 generated cases resembling `evals/cases` (refunds, shipping, orders, account,
products, hand-offs; greetings, items, places, numbers and phrasing varied) are written
as a suite and loaded. The de-duplication index over their user messages is built and
timed on its own (a process builds it once per dataset version). Then 200 new production
failures are de-duplicated one by one: half are near-duplicates of existing cases
(renumbered, re-punctuated, a word swapped or dropped, a typo), half are new questions.
Reported: median and p95 ms per item for the lookup alone and for a whole `take_in`
(lookup, open-item check and the insert, on SQLite), and how many of each half matched.

`python -m bench.intake`
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from bench.suites import OWNERS

CASES = 50_000
ITEMS = 200
SEED = 20_261_201

GREETINGS = ["", "hi", "hello", "hey there", "hiya", "good morning", "hi team", "bonjour", "hallo"]
CLOSERS = ["", "thanks", "thank you", "cheers", "thx", "please help", "asap please", "ty"]
ITEMS_SOLD = [
    "floor lamp", "velvet sofa", "oak dining table", "wool rug", "desk chair", "bookshelf",
    "bed frame", "mattress", "armchair", "coffee table", "pendant light", "wardrobe",
    "bar stool", "side table", "mirror", "curtains", "duvet", "outdoor bench", "tv stand",
    "kids bunk bed", "standing desk", "ceramic vase", "glass shade", "sofa cover",
]  # fmt: skip
PLACES = [
    "Berlin", "Lyon", "Ohio", "Manchester", "Munich", "Zurich", "Madrid", "Dublin", "Texas",
    "Vienna", "Milan", "Leeds", "Oslo", "Warsaw", "Lisbon", "Toronto", "Brussels", "Prague",
]  # fmt: skip
TEMPLATES = [
    "i bought a {item} {n} days ago in {place}, can i return it?",
    "ordered a {item}, delivered to {place} last week, {issue}. how long have i got to return it?",
    "my {item} arrived {damage}. order {order}. what are my options?",
    "where is my order {order}? the {item} was supposed to arrive {when}",
    "tracking for order {order} has not moved in {n} days, is my {item} lost?",
    "can i change the delivery address for order {order} to {place}? the {item} hasnt shipped yet",
    "i was charged twice for order {order} ({item}), can you refund one of the payments?",
    "how do i reset my password, the reset email never arrives and i need to check my {item} order",
    "please delete my account and all my data, i live in {place}",
    "does the {item} come assembled or do i need tools? ordering to {place}",
    "is the {item} available in {colour}? i need it before {when}",
    "the {item} i got is {issue}, i want to speak to a real person",
    "you sent me the wrong {item}, order {order}, i ordered the {colour} one",
    "can i cancel order {order}? i found the {item} cheaper somewhere else",
    "do you ship the {item} to {place} and how much is shipping?",
    "my discount code {code} doesnt work on the {item}",
    "i returned the {item} {n} weeks ago and still no refund for order {order}",
    "the assembly instructions for the {item} are missing step {n}",
    "can i pay for the {item} in {n} instalments?",
    "what is the warranty on the {item}? one leg broke after {n} months",
]
ISSUES = [
    "the colour is a bit off compared to the photos", "it doesnt fit the room",
    "it is smaller than i expected", "it smells weird", "it wobbles", "one drawer sticks",
    "it is scratched", "the fabric is pilling already",
]  # fmt: skip
DAMAGE = ["broken", "with a cracked leg", "scratched all over", "in pieces", "soaking wet"]
WHEN = ["yesterday", "on monday", "last week", "two days ago", "this morning", "by friday"]
COLOURS = ["grey", "green", "navy", "sand", "black", "white", "terracotta", "mustard"]
NAMES = ["anna", "tom", "priya", "lukas", "sofia", "mehmet", "chloe", "james", "yuki", "ines"]
ASIDES = [
    "my name is {name}", "second time asking", "sorry for the caps", "ordered on your app",
    "ordered through the website", "my partner placed the order", "this is for my office",
    "we are moving to {place} soon", "i already emailed {when}", "your chat bot was no help",
    "i am a returning customer", "it was a gift", "{name} from {place} here",
    "i called {when} but nobody answered", "bought it in the sale",
]  # fmt: skip
SWAPS = {
    "bought": "purchased", "ordered": "bought", "arrived": "came", "can i": "could i",
    "where is": "wheres", "supposed to": "meant to", "please": "pls", "how long": "how much time",
}  # fmt: skip
NEW_TEMPLATES = [
    "do you offer gift wrapping for the {item}, it is a present for my mum in {place}",
    "is your {item} made from recycled materials? trying to buy sustainably",
    "can my building concierge in {place} sign for the {item} delivery",
    "i want to become a reseller of your {item} range in {place}, who do i talk to",
    "is there a student discount on the {item}",
]


def _text(rng: random.Random, template: str) -> str:
    body = template.format(
        item=rng.choice(ITEMS_SOLD),
        place=rng.choice(PLACES),
        n=rng.randint(1, 40),
        order=f"#{rng.randint(10_000, 99_999)}",
        issue=rng.choice(ISSUES),
        damage=rng.choice(DAMAGE),
        when=rng.choice(WHEN),
        colour=rng.choice(COLOURS),
        code=f"SAVE{rng.randint(5, 50)}",
    )
    greeting, closer = rng.choice(GREETINGS), rng.choice(CLOSERS)
    if rng.random() < 0.6:
        aside = rng.choice(ASIDES).format(
            name=rng.choice(NAMES), place=rng.choice(PLACES), when=rng.choice(WHEN)
        )
        body = f"{aside} {body}" if rng.random() < 0.5 else f"{body}, {aside}"
    text = f"{greeting}, {body}" if greeting else body
    text = f"{text} {closer}" if closer else text
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text


def case_texts(count: int = CASES, seed: int = SEED) -> list[str]:
    rng = random.Random(seed)
    return [_text(rng, rng.choice(TEMPLATES)) for _ in range(count)]


def _perturb(rng: random.Random, text: str) -> str:
    """A near-duplicate of `text`: one or two small edits a reporter would make."""
    words = text.split()
    for _ in range(rng.randint(1, 2)):
        edit = rng.randrange(4)
        if edit == 0:
            for old, new in SWAPS.items():
                if old in text.lower():
                    text = text.lower().replace(old, new, 1)
                    break
            words = text.split()
        elif edit == 1 and len(words) > 8:
            del words[rng.randrange(len(words))]
            text = " ".join(words)
        elif edit == 2:
            i = rng.randrange(len(words))
            w = words[i]
            if len(w) > 3:
                j = rng.randrange(len(w) - 1)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]  # transposed letters
            text = " ".join(words)
        else:
            text = text.upper() if rng.random() < 0.2 else text.replace(",", "!!", 1) + "??"
    return text


def new_items(texts: list[str], count: int = ITEMS, seed: int = SEED + 1) -> list[tuple[str, str]]:
    """(kind, text): `near` perturbed from a case, `new` from templates no case uses."""
    rng = random.Random(seed)
    items = [("near", _perturb(rng, rng.choice(texts))) for _ in range(count // 2)]
    items += [("new", _text(rng, rng.choice(NEW_TEMPLATES))) for _ in range(count - count // 2)]
    rng.shuffle(items)
    return items


def write_cases(root: Path, texts: list[str]) -> Path:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "owners.yaml").write_text(OWNERS)
    (root / "scorecard.yaml").write_text(
        "route: bench\nowner: bench\ntarget: {kind: python, callable: 'bench.callables:answer', "
        "model: stub}\nprices:\n  stub: {input_per_mtok: 0.5, output_per_mtok: 1.5}\n"
    )
    with (root / "cases" / "generated.jsonl").open("wb") as out:
        for i, text in enumerate(texts):
            case = {
                "id": f"prod-{i:06d}",
                "set": ("monitoring", "blocking", "backlog")[i % 3],
                "tags": ["generated"],
                "source": {"kind": "production", "ref": f"ZD-{100_000 + i}"},
                "input": {"messages": [{"role": "user", "content": text}]},
                "expect": {"outcome": "answer"},
            }
            out.write(orjson.dumps(case) + b"\n")
    return root


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _payloads(items: list[tuple[str, str]]) -> Iterator[tuple[str, dict[str, object]]]:
    for i, (kind, text) in enumerate(items):
        yield (
            kind,
            {
                "messages": [{"role": "user", "content": text}],
                "observed_output": "Our return window is 30 days from delivery.",
                "what_was_wrong": "Generated failure for the intake benchmark.",
                "ticket": f"ZD-{900_000 + i}",
                "reporter": "bench",
            },
        )


def intake_bench(work: Path, line: Callable[[str, str, str], None]) -> None:
    """Print the figures through `line(label, value, goal)`."""
    from evalcore.store.engine import dispose_engines, get_engine
    from evalcore.suite import load_suite
    from evalcore.triage.dedup import DedupIndex
    from evalcore.triage.intake import ProductionFailure, case_index, take_in

    texts = case_texts()
    items = new_items(texts)

    started = time.perf_counter()
    index = DedupIndex((f"case:{i}", text) for i, text in enumerate(texts))
    build_s = time.perf_counter() - started

    timings: list[float] = []
    by_outcome: dict[str, list[float]] = {"exact": [], "near": [], "none": []}
    matched = {"near": 0, "new": 0}
    for kind, text in items:
        started = time.perf_counter()
        found = index.match(text)
        elapsed = time.perf_counter() - started
        timings.append(elapsed)
        outcome = "none" if found is None else "exact" if found.similarity == 1.0 else "near"
        by_outcome[outcome].append(elapsed)
        matched[kind] += found is not None
    lookup_median, lookup_p95 = _ms(timings)

    root = write_cases(work / "intake-suite", texts)
    started = time.perf_counter()
    suite = load_suite(root)
    load_s = time.perf_counter() - started
    engine = get_engine(f"sqlite:///{work / 'intake-bench.db'}")
    try:
        started = time.perf_counter()
        case_index(suite)
        suite_index_s = time.perf_counter() - started
        full: list[float] = []
        stored = {"near": 0, "new": 0}
        for kind, payload in _payloads(items):
            failure = ProductionFailure.model_validate(payload)
            started = time.perf_counter()
            result = take_in(engine, suite, failure, source="cli", provenance={"bench": True})
            full.append(time.perf_counter() - started)
            stored[kind] += result.duplicate_of is not None
    finally:
        dispose_engines()
    full_median, full_p95 = _ms(full)

    half = len(items) // 2
    print(
        f"\n[intake de-duplication: {len(texts):,} cases, {len(index):,} distinct texts, "
        f"{len(items)} new items ({half} near-duplicates)]"
    )
    line("suite load (load_suite, for comparison)", f"{load_s:.2f} s", "")
    line("index build (once per dataset version)", f"{build_s:.2f} s", "")
    line("index build from the loaded suite (case_index)", f"{suite_index_s:.2f} s", "")
    line(
        "lookup per item, median / p95",
        f"{lookup_median:.2f} / {lookup_p95:.2f} ms",
        "goal < 50 ms per item",
    )
    for outcome, label in (
        ("exact", "same normalised text"),
        ("near", "near-duplicate"),
        ("none", "no match"),
    ):
        if by_outcome[outcome]:
            median, p95 = _ms(by_outcome[outcome])
            line(
                f"  of which {label} ({len(by_outcome[outcome])}), median / p95",
                f"{median:.2f} / {p95:.2f} ms",
                "",
            )
    line(
        "take_in per item (lookup + open items + insert), median / p95",
        f"{full_median:.2f} / {full_p95:.2f} ms",
        "goal < 50 ms per item",
    )
    line("near-duplicates found (of the perturbed half)", f"{matched['near']} / {half}", "")
    line("matches among the new half", f"{matched['new']} / {len(items) - half}", "")
    line(
        "stored as duplicates by take_in (near half / new half)",
        f"{stored['near']} / {stored['new']}",
        "",
    )


def _line(label: str, value: str, goal: str) -> None:
    print(f"  {label:<62} {value:>18}   {goal}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="evalcore-intake-bench-") as work:
        intake_bench(Path(work), _line)


if __name__ == "__main__":
    main()
