"""Fictional everyday documents (e-mails, tables, logs, chats, invoices, ...) with questions.

Why: a hypernetwork meta-trained on `synthetic.py` (one stating sentence per fact, one template
family per genre) learns how *our templates* state facts, and barely transfers to documents people
write. Here each kind has its own layout, a fact can sit in a header field, a table cell, a list
item, a speaker's line or a subordinate clause, every document carries distractors of the same type
as its answers (other people, dates, amounts), and questions are worded apart from the text that
states the answer, so that neither "copy the sentence" nor "the only name in the document" works.

Every value is invented (see `values.Inventor`), so the base model can only answer from the text.
Record `index` of `seed` comes from its own random stream: a trainer can ask for any record without
producing the ones before it, and never sees the same document twice.

    python -m vllm_d2l.datasets.realistic --n 5 --seed 0
    python -m vllm_d2l.datasets.realistic --n 200 --seed 1 --kinds default   # the held-out kinds only
    python -m vllm_d2l.datasets.realistic --n 5 --kinds house_note,field_diary   # `EVERYDAY_KINDS`, on request only
"""
from __future__ import annotations

import argparse
import datetime as _dt
import random
import re
import sys
from typing import Callable, Iterable, Sequence

from .jsonl import choose_names, generate_to, name_list
from . import words as W
from .values import Inventor, OpenValues

# "a olive folder" -> "an olive folder": values are drawn after a template's article is written
_ARTICLE = re.compile(r"\b([Aa]) ((?:[aeio]|u(?!ni|s[aeiu]))\w*)")
_ALIASES = {"org": "company", "town": "place"}
_DATE_STYLES = ("{M} {d}", "{d} {M}", "{M} {d}, {y}", "{d} {M} {y}", "{Mon} {d}", "{wd} {d} {M}",
                "{wd}, {M} {d}", "{y}-{m:02d}-{d:02d}")
_QUESTION_WORDS = {"who", "what", "when", "where", "which", "how", "whose", "whom", "at", "on", "in",
                   "for", "to", "from", "by", "is", "was", "did", "does", "according", "until", "under"}


class _Exhausted(RuntimeError):
    """No fresh value could be drawn; the record is rebuilt from the same stream."""


def _bounded(value: str) -> re.Pattern:
    """`value` as a whole token: "4" must not match inside "14" or "2041"."""
    left = r"(?<!\w)" if value[:1].isalnum() else ""
    right = r"(?!\w)" if value[-1:].isalnum() else ""
    return re.compile(left + re.escape(value) + right)


def occurs(value: str, text: str) -> bool:
    return bool(_bounded(value).search(text))


class Doc:
    """One document under construction: its random stream, its values and its candidate questions.

    House style (date and time format, heading decoration, currency) is drawn once per document,
    as a real writer is consistent within a page but not across pages.
    """

    def __init__(self, rng: random.Random, nouns: Sequence[str], open_values: OpenValues | None = None):
        self.rng = rng
        self.inv = Inventor(rng, open_values=open_values)
        self.nouns = tuple(nouns)
        self.asks: list[tuple[str, tuple[str, ...], str]] = []
        self.year = rng.randint(2014, 2034)
        self.date_style = rng.choice(_DATE_STYLES)
        self.time_style = rng.randrange(5)
        self.head_style = rng.randrange(7)
        self.currency = rng.choice(W.CURRENCIES + W.CURRENCY_WORDS)  # "$12" or "12 pounds"
        self.long = rng.random() < 0.18  # a minority of documents run well past the usual length

    # -- randomness
    def pick(self, *options):
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def sample(self, seq: Sequence, k: int) -> list:
        return self.rng.sample(list(seq), min(k, len(seq)))

    def shuffled(self, seq: Iterable) -> list:
        out = list(seq)
        self.rng.shuffle(out)
        return out

    # -- values
    def v(self, kind: str) -> str:
        try:
            return self.inv.draw(_ALIASES.get(kind, kind))
        except RuntimeError as e:
            raise _Exhausted(str(e)) from None

    def person(self) -> str:
        return self.v("person")

    def first(self) -> str:
        return self.v("first")

    def place(self) -> str:
        return self.v("place")

    def company(self) -> str:
        return self.v("company")

    def fresh(self, make: Callable[[], str]) -> str:
        """A value from `make` that no earlier value of this document contains, or is contained in,
        as a whole token; so an answer is never also part of an unrelated value."""
        for _ in range(200):
            value = make()
            if self._is_fresh(value):
                self.inv.used.add(value)
                return value
        raise _Exhausted(f"no fresh value like {make()!r}")

    def _is_fresh(self, value: str) -> bool:
        pat = _bounded(value)
        return not any(pat.search(u) or _bounded(u).search(value) for u in self.inv.used)

    def word(self, pool: Sequence[str], open_: bool = True) -> str:
        """A fresh entry of an ordinary-word pool (`words.GEAR`, ...). With open values on, that
        share comes from the open vocabulary instead, so these pools cannot be learnt by heart
        either; `open_=False` for durations, counts and clock times, whose wording is the point."""
        return self.fresh(lambda: (open_ and self.inv.open_thing()) or self.rng.choice(pool))

    def words(self, pool: Sequence[str], k: int, open_: bool = True) -> list[str]:
        return [self.word(pool, open_) for _ in range(k)]

    def num(self, lo: int, hi: int, fmt: str = "{}") -> str:
        return self.fresh(lambda: fmt.format(self.rng.randint(lo, hi)))

    def big(self, lo: int, hi: int) -> str:
        return self.fresh(lambda: f"{self.rng.randint(lo, hi):,}")

    def money(self, lo: int, hi: int, cents: bool | None = None) -> str:
        with_cents = self.chance(0.4) if cents is None else cents
        return self.fresh(lambda: self._money(lo, hi, with_cents))

    def _money(self, lo: int, hi: int, with_cents: bool) -> str:
        whole = self.rng.randint(lo, hi)
        return self._in_currency(f"{whole:,}.{self.rng.choice(range(5, 100, 5)):02d}" if with_cents else f"{whole:,}")

    def _in_currency(self, number: str) -> str:
        return f"{number} {self.currency}" if self.currency.isalpha() else f"{self.currency}{number}"

    def scaled(self, money: str, scale: str) -> str:
        """A whole sum from `money` in thousands (",000") or millions (" million"): the scale goes
        on the number, before a currency word ("34,000 pounds", not "34 pounds,000")."""
        if not self.currency.isalpha():
            return money + scale
        number = money.removesuffix(f" {self.currency}")
        return self._in_currency(number + scale)

    def amount(self, cents: int) -> str:
        """A computed sum in this document's currency (totals must add up, so not drawn)."""
        return self._in_currency(f"{cents // 100:,}.{cents % 100:02d}")

    def date(self, style: str | None = None) -> str:
        return self.fresh(lambda: self._date(style or self.date_style))

    def dates(self, k: int, style: str | None = None) -> list[str]:
        """`k` fresh dates in calendar order, for things that must come in sequence (leave, then return)."""
        style = style or self.date_style
        for _ in range(50):
            days = sorted(self.rng.sample(range(1, 337), k))
            vals = [self._format_date(_dt.date(self.year, 1 + (n - 1) // 28, 1 + (n - 1) % 28), style) for n in days]
            if all(self._is_fresh(v) for v in vals) and all(
                    not _bounded(a).search(b) for a in vals for b in vals if a != b):
                self.inv.used.update(vals)
                return vals
        raise _Exhausted("no fresh dates")

    def _date(self, style: str) -> str:
        return self._format_date(_dt.date(self.year, self.rng.randint(1, 12), self.rng.randint(1, 28)), style)

    @staticmethod
    def _format_date(when: _dt.date, style: str) -> str:
        month = W.MONTHS[when.month - 1]
        return style.format(M=month, Mon=month[:3], d=when.day, m=when.month, y=when.year, wd=when.strftime("%A"))

    def time(self, style: int | None = None) -> str:
        return self.fresh(lambda: self._time(self.time_style if style is None else style))

    def times(self, k: int, style: int | None = None) -> list[str]:
        """`k` fresh times in clock order (schedules and chats run forwards)."""
        style = self.time_style if style is None else style
        slots = [(h, mm) for h in range(7, 22) for mm in range(0, 60, 5)]
        for _ in range(50):
            vals = [self._fmt_time(h, mm, style) for h, mm in sorted(self.rng.sample(slots, k))]
            if all(self._is_fresh(v) for v in vals) and all(
                    not _bounded(a).search(b) for a in vals for b in vals if a != b):
                self.inv.used.update(vals)
                return vals
        raise _Exhausted("no fresh times")

    def _time(self, style: int) -> str:
        return self._fmt_time(self.rng.randint(7, 21), self.rng.choice(range(0, 60, 5)), style)

    @staticmethod
    def _fmt_time(h: int, mm: int, style: int) -> str:
        h12, half = (h - 12 if h > 12 else h), ("p.m." if h >= 12 else "a.m.")
        return (f"{h:02d}:{mm:02d}", f"{h12}:{mm:02d} {half}", f"{h12}.{mm:02d}{half.replace('.', '')}",
                f"{h12}:{mm:02d} {half.replace('.', '').upper()}", f"{h}:{mm:02d}")[style]

    def clock(self) -> str:
        """A log-style time with seconds."""
        return self.fresh(lambda: f"{self.rng.randint(0, 23):02d}:{self.rng.randint(0, 59):02d}:"
                                  f"{self.rng.randint(0, 59):02d}")

    def phone(self) -> str:
        r = self.rng
        return self.fresh(lambda: r.choice((
            f"0{r.randint(11, 99)}{r.randint(1, 9)} {r.randint(100, 999)} {r.randint(100, 999)}",
            f"({r.randint(201, 989)}) 555-{r.randint(1000, 9999)}",
            f"+{r.randint(30, 49)} {r.randint(10, 99)} {r.randint(100, 999)} {r.randint(1000, 9999)}")))

    def ext(self) -> str:
        return self.num(2000, 7999)

    def ref(self, prefix: str = "", digits: int = 5) -> str:
        lo, hi = 10 ** (digits - 1), 10 ** digits - 1
        return self.fresh(lambda: f"{prefix}{self.rng.randint(lo, hi)}")

    def email(self, person: str, org: str | None = None) -> str:
        host = (org or self.place()).split()[0].lower()
        first, *rest = person.lower().split()
        local = self.pick(f"{first}.{rest[-1]}" if rest else first, f"{first[0]}{rest[-1]}" if rest else first,
                          first)
        return f"{local}@{host}.{self.pick('com', 'org', 'net', 'co.uk', 'example')}"

    def f(self, template: str, **known: str) -> str:
        """Fill `{person}`, `{org2}`, `{town}` ... with fresh values (digits tell same-kind values
        apart); `known` gives the ones already fixed."""
        doc = self

        class Scope(dict):
            def __missing__(self, key: str) -> str:
                value = doc.v(re.sub(r"\d+$", "", key))
                self[key] = value
                return value

        return _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), template.format_map(Scope(known)))

    # -- layout
    def heading(self, text: str) -> str:
        s = self.head_style
        return (f"{text}:", text.upper(), f"## {text}", f"**{text}**", f"{text}\n{'-' * len(text)}",
                f"{text.upper()}:", f"{text}")[s]

    def label(self, key: str) -> str:
        """A form or header field name, in this document's case style."""
        return (key, key.upper(), key, key.lower(), key, key, key)[self.head_style]

    # -- questions
    def ask(self, answer: str, questions: Sequence[str], type_: str) -> None:
        self.asks.append((answer, tuple(questions), type_))


def _an(text: str) -> str:
    return _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), text)


def _plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _first_name(person: str) -> str:
    return person.split()[0]


def _surname(person: str) -> str:
    return person.split()[-1]


def _bullets(d: Doc, items: Sequence[str], numbered: bool | None = None) -> str:
    numbered = d.chance(0.4) if numbered is None else numbered
    mark = d.pick("-", "*", "•")
    if numbered:
        style = d.pick("{}.", "{})", "({})")
        return "\n".join(f"{style.format(i)} {item}" for i, item in enumerate(items, 1))
    return "\n".join(f"{mark} {item}" for item in items)


def _grid(d: Doc, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Markdown, space-aligned, or comma-separated: the same cells in the layouts people paste."""
    style = d.rng.randrange(3)
    if style == 0:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if style == 1:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])
    sep = d.pick(", ", "; ", "\t")
    return "\n".join([sep.join(header)] + [sep.join(r) for r in rows])


def _paragraphs(d: Doc, sentences: Sequence[str], lo: int = 2, hi: int = 4) -> str:
    out, i = [], 0
    while i < len(sentences):
        step = d.rng.randint(lo, hi)
        out.append(" ".join(s for s in sentences[i:i + step] if s))
        i += step
    return "\n\n".join(p for p in out if p)


# Sentences that state nothing any question asks about; they pad documents and plant names, places
# and numbers of the same types as the answers. Placeholders draw fresh values.
_ASIDES = (
    "{first} says the coffee machine on the second floor works again, more or less.",
    "The car park behind the {town} office will be resurfaced at some point this year.",
    "Someone left a blue umbrella by the lifts; it is still there.",
    "{person} from {org} sends her regards.",
    "The printer on the third floor keeps jamming, so use the one by the kitchen.",
    "Last time this took far longer than anyone expected.",
    "Nobody is quite sure who ordered the extra chairs.",
    "{first} has offered to bake something, which nobody is going to argue with.",
    "It rained for most of the week, which did not help.",
    "The old signs near {town} station still point the wrong way.",
    "Thanks again to everyone who stayed late last Thursday.",
    "Parking is limited, so car-sharing is encouraged.",
    "{person} is moving to the {town} branch at the end of the month.",
    "The lift in the east wing is being serviced, so allow a few extra minutes.",
    "There is still some cake left in the kitchen if anyone wants it.",
    "As usual, please keep the fire doors closed.",
    "A parcel for {first} arrived at reception and is waiting there.",
    "{org} has promised a reply by the end of the week.",
    "Some of the older files are still in boxes in the basement.",
    "The heating takes a while to come on in the mornings.",
)


# the same for documents about the world outside an office (news, blogs, biographies, trips)
_WORLD_ASIDES = (
    "The weather is expected to stay mild for the rest of the week.",
    "{person} of {org} declined to comment.",
    "Last year a similar event in {town} drew a smaller crowd.",
    "Local buses will run a reduced service over the holiday.",
    "{first}, who has lived in {town} all her life, said she had never seen anything like it.",
    "A similar scheme was tried in {town} a few years ago, with mixed results.",
    "Tickets for the spring concert in {town} are already on sale.",
    "The footpath along the river remains closed after the floods.",
    "Parking in the town centre is limited on market days.",
    "{person}, a neighbour, remembers when the whole street was still fields.",
    "The next open day is planned for the autumn.",
    "Several readers wrote in after last month's piece about {town}.",
)


def _asides(d: Doc, k: int, world: bool = False) -> list[str]:
    return [d.f(t) for t in d.sample(_WORLD_ASIDES if world else _ASIDES, k)]


# =============================================================================================
# Kinds. Each takes a Doc, returns the text, and registers questions with `d.ask`. A kind offers
# more questions than a record keeps, so which facts get asked about varies too.
# =============================================================================================

def _email_reschedule(d: Doc, cc: str) -> tuple[str, list[str]]:
    proj, away = d.v("codename"), d.first()
    old, new, room, start = d.date(), d.date(), d.v("room"), d.time()
    p1 = d.pick(
        f"I'm afraid the {proj} review we pencilled in for {old} has to move: {away} is at a trade fair that whole week.",
        f"Since {away} will be away at a trade fair, we can't keep {old} for the {proj} review.",
        f"Bad news about {old}. With {away} out of the office all week, the {proj} review can't go ahead that day.")
    p2 = d.pick(
        f"Would {new} suit you instead? I've put a provisional hold on room {room} from {start}.",
        f"Could we do {new}? Room {room} is free from {start} and I've reserved it just in case.",
        f"My suggestion is {new}, starting {start}, in room {room} (already booked, but easy to cancel).")
    p3 = d.pick(f"{_first_name(cc)} will circulate the slides the day before.", "Let me know if that clashes with anything.",
                "If that doesn't work, send me two or three dates that do.", "")
    d.ask(old, ["For what date had the review originally been planned?", "What was the first date set for the review?",
                "Which day was the review supposed to happen before it was moved?"], "date")
    d.ask(away, ["Which colleague cannot be there on the original date?", "Because of whose absence does the review need a new date?",
                 "Who will be at the trade fair?"], "name")
    d.ask(new, ["What date does the sender propose instead?", "When would the review now take place?",
                "Which day is suggested as the new date?"], "date")
    d.ask(room, ["Where would they meet?", "Which room did the writer reserve?", "In what room would the review be held?"], "code")
    d.ask(start, ["At what time would the meeting begin?", "From what time is the room held?"], "time")
    d.ask(proj, ["Which project's review is being moved?", "What project is the review about?"], "name")
    return d.pick(f"{proj} review - new date?", f"Re: {proj} review", f"Moving the {proj} review"), [p1, p2, p3]


def _email_order(d: Doc, cc: str) -> tuple[str, list[str]]:
    order, item = d.ref(digits=5), d.pick(*W.PRODUCT_KINDS)
    n, town, shipped, courier = d.num(3, 40), d.place(), d.date(), d.company()
    refund, days = d.money(8, 90, cents=True), d.num(2, 6)
    p1 = d.pick(f"Thanks for getting in touch about order #{order}.", f"Following up on your call about order no. {order}:",
                f"I've looked into your order ({order}) as promised.")
    p1 += " " + d.pick(
        f"The {n} {_plural(item)} left our {town} warehouse on {shipped} and are now with {courier}, "
        f"who expect to deliver within {days} working days.",
        f"Our records show that {n} {_plural(item)} were dispatched from {town} on {shipped}; {courier} is handling the delivery.",
        f"All {n} {_plural(item)} went out on {shipped} from the warehouse in {town}, with {courier} doing the delivery.")
    p2 = d.pick(f"As one of them arrived with a cracked lid, we have refunded {refund} to your card.",
                f"We've credited {refund} back to your original payment method to cover the damaged unit.",
                f"For the trouble, a refund of {refund} is on its way to you; it can take a few days to show.")
    d.ask(order, ["What is the order number?", "Which order is the message about?"], "code")
    d.ask(n, [f"How many {_plural(item)} were in the order?", f"What quantity of {_plural(item)} was sent?"], "number")
    d.ask(town, ["From which town was the order shipped?", "Where is the warehouse that sent the goods?"], "place")
    d.ask(shipped, ["On what date did the goods leave the warehouse?", "When was the parcel sent out?"], "date")
    d.ask(courier, ["Which delivery firm is bringing the parcel?", "Who is carrying the shipment?"], "name")
    d.ask(refund, ["How much money is being returned to the customer?", "What sum is paid back?"], "amount")
    return d.pick(f"Your order {order}", f"Re: order #{order}", f"Re: missing {_plural(item)}"), [p1, p2]


def _email_visit(d: Doc, cc: str) -> tuple[str, list[str]]:
    town, arrive, flight, land = d.place(), d.date(), d.v("code"), d.time()
    hotel = d.pick(f"the {d.place()} Inn", f"Hotel {d.v('surname')}", f"the {d.v('surname')} Arms")
    nights = d.num(2, 9)
    p1 = d.pick(f"Just confirming my visit: I fly into {town} on {arrive}, flight {flight}, landing around {land}.",
                f"My plans are settled. Flight {flight} gets me to {town} at {land} on {arrive}.",
                f"I'll be arriving in {town} on {arrive} (flight {flight}, due in at {land}).")
    p2 = d.pick(f"I've booked {nights} nights at {hotel}, so no need to put me up.",
                f"I'm staying at {hotel} near the station for {nights} nights.",
                f"For the {nights} nights I'm there, I'll be at {hotel}.")
    p3 = d.pick(f"If {_first_name(cc)} is free, perhaps the three of us could have dinner on the first evening.",
                "Do tell me if you need anything brought over.", "")
    d.ask(town, ["Which city is the writer travelling to?", "Where will the sender's plane land?"], "place")
    d.ask(flight, ["What flight is the sender taking?", "Which flight number will the writer be on?"], "code")
    d.ask(arrive, ["On what day does the writer get there?", "When is the sender due to arrive?"], "date")
    d.ask(land, ["At what time is the plane expected?", "When should the flight touch down?"], "time")
    d.ask(hotel.removeprefix("the "), ["Where will the writer sleep?", "Which hotel has the sender reserved?"], "place")
    d.ask(nights, ["How many nights will the sender stay?", "How long is the hotel reservation, in nights?"], "number")
    return d.pick(f"Visit to {town}", "My travel plans", f"Arriving {arrive}"), [p1, p2, p3]


def _email_handover(d: Doc, cc: str) -> tuple[str, list[str]]:
    (start, back), cover, client = d.dates(2), d.person(), d.company()
    color, cabinet = d.v("color"), d.v("room")
    p1 = d.pick(f"From {start} I'll be on leave, and back at my desk on {back}.",
                f"A reminder that I'm off from {start}; I return on {back}.",
                f"As you know, my holiday starts on {start}. I'm back on {back}.")
    p2 = d.pick(f"While I'm out, {cover} has kindly agreed to look after the {client} account.",
                f"{cover} will cover the {client} account until I'm back.",
                f"Anything to do with {client} should go to {cover}, who is standing in for me.")
    p3 = d.pick(f"The signed contracts are in the {color} folder in cabinet {cabinet}.",
                f"You'll find the signed contracts in cabinet {cabinet}, {color} folder.",
                f"If you need the signed contracts, look in cabinet {cabinet} for a {color} folder.")
    d.ask(back, ["When does the sender return to work?", "On what date will the writer be back?"], "date")
    d.ask(start, ["When does the writer's time off begin?", "From what date is the sender away?"], "date")
    d.ask(cover, ["Who is deputising for the writer?", f"Who handles {client} during the absence?",
                  "Which colleague takes over the account?"], "name")
    d.ask(client, ["Which client account is being handed over?", "What customer's account needs looking after?"], "name")
    d.ask(color, ["What colour is the folder with the contracts?", "Which folder colour should one look for?"], "color")
    d.ask(cabinet, ["Which cabinet holds the contracts?", "Where are the signed agreements stored?"], "code")
    return d.pick("Out of office - handover", f"Cover while I'm away ({start} - {back})", "Handover notes"), [p1, p2, p3]


def _email(d: Doc) -> str:
    sender, to, cc = d.person(), d.person(), d.person()
    org = d.company()
    sent = d.date()
    subject, body = d.pick(_email_reschedule, _email_order, _email_visit, _email_handover)(d, cc)
    head = [(d.label("From"), f"{sender} <{d.email(sender, org)}>" if d.chance(0.6) else sender),
            (d.label("To"), to if d.chance(0.5) else f"{to} <{d.email(to)}>"),
            (d.label("Date"), f"{sent}, {d.time()}" if d.chance(0.6) else sent),
            (d.label("Subject"), subject)]
    if d.chance(0.6):
        head.insert(2, (d.label("Cc"), cc))
        d.ask(cc, ["Who was copied on the message?", "Which person received a copy of the e-mail?"], "name")
    if d.chance(0.3):
        head.insert(0, head.pop(3))
    greeting = d.pick("Hi {},", "Dear {},", "{} -", "Hello {},", "Morning {}!").format(_first_name(to))
    sign = [d.pick("Best,", "Thanks,", "Kind regards,", "Cheers,", "All the best,")]
    if d.chance(0.6):
        job = d.v("job")
        sign += [sender, f"{job[0].upper()}{job[1:]}, {org}"]
        d.ask(job, ["What is the sender's job title?", "What position does the writer hold?",
                    f"What does {_first_name(sender)} do for a living?"], "phrase")
    else:
        sign.append(_first_name(sender))
    if d.chance(0.5):
        phone = d.phone()
        sign.append(f"{d.pick('Tel', 'Mobile', 'Phone', 'T')}: {phone}")
        d.ask(phone, ["What number can the writer be reached on?", "Which phone number is given for the sender?"], "code")
    body = [b for b in body if b]
    if d.long:
        body.insert(d.rng.randint(1, len(body)), " ".join(_asides(d, 3)))
    d.ask(sender, ["Who sent the e-mail?", "Who wrote this message?", "Who is the author of the e-mail?"], "name")
    d.ask(to, ["To whom is the e-mail addressed?", "Who is the recipient of the message?", "Who was the e-mail written to?"], "name")
    d.ask(sent, ["On what date was the message sent?", "When was the e-mail written?"], "date")
    parts = ["\n".join(f"{k}: {v}" for k, v in head), greeting, *body, "\n".join(sign)]
    return "\n\n".join(parts)


_COMMITTEES = ("Parish Council", "Staff Committee", "Board of Trustees", "Allotment Society", "Parents' Association",
               "Residents' Association", "Safety Working Group", "Book Club Committee", "Cycling Club Committee")
_EVENTS = ("summer fair", "quiz night", "annual dinner", "open day", "plant sale", "sponsored walk", "film evening")
# (what the action point says, how a question names it)
_TASKS = (("order the new chairs", "the chair order"), ("book the minibus", "the minibus booking"),
          ("contact the printer", "the leaflet printing"), ("update the website", "the website update"),
          ("write to the council", "the letter to the council"), ("collect quotes for the roof", "the roofing quotes"),
          ("renew the insurance", "the insurance renewal"), ("draft the newsletter", "the next newsletter"))


def _minutes(d: Doc) -> str:
    org = d.pick(d.place(), d.company())
    committee = d.pick(*_COMMITTEES)
    held = d.date()
    chair, scribe, treasurer = d.person(), d.person(), d.person()
    others = [d.person() for _ in range(d.rng.randint(2, 4))]
    absent = d.person()
    balance, event = d.money(300, 9000, cents=False), d.pick(*_EVENTS)
    venue = d.f("the {town} {hall}", hall=d.pick("Village Hall", "Community Centre", "Scout Hut", "Library"))
    event_day = d.date()
    yes, no = d.num(5, 19), d.num(1, 4)
    tasks = d.sample(_TASKS, d.rng.randint(2, 3))
    owners = [d.pick(*others, treasurer, chair) for _ in tasks]
    owners = list(dict.fromkeys(owners)) + [o for o in others if o not in owners]
    deadlines = [d.date() for _ in tasks]
    nxt, nxt_time = d.date(), d.time()
    present = d.shuffled([chair, treasurer] + others)
    marks = {chair: " (Chair)", treasurer: " (Treasurer)"} if d.chance(0.5) else {}
    lines = [d.pick(f"{org} {committee}", f"{committee.upper()} - {org.upper()}"),
             d.pick(f"Minutes of the meeting held on {held}", f"Minutes, {held}", f"Meeting of {held}: minutes")]
    lines.append(f"{d.label('Present')}: " + ", ".join(p + marks.get(p, "") for p in present))
    lines.append(f"{d.label('Apologies')}: {absent}")
    if not marks:
        lines.append(f"{d.pick('In the chair', 'Chair')}: {chair}")
    lines.append(f"{d.pick('Minutes taken by', 'Minute-taker', 'Notes')}: {scribe}")
    items = []
    items.append(d.pick(f"Finances. {treasurer} reported that the account stands at {balance}, with no bills outstanding.",
                        f"Treasurer's report: a balance of {balance} was reported by {treasurer}.",
                        f"Money. {_first_name(treasurer)} said there is {balance} in the bank after last month's costs."))
    items.append(d.pick(f"The {event} will take place at {venue} on {event_day}; volunteers are needed for set-up.",
                        f"After some discussion it was agreed to hold the {event} on {event_day} at {venue}.",
                        f"{event.capitalize()}: date fixed for {event_day}. Venue: {venue}."))
    items.append(d.pick(f"The proposal to replace the notice board was carried, {yes} in favour and {no} against.",
                        f"Vote on the new notice board: carried ({yes} for, {no} against).",
                        f"Members voted {yes} to {no} to replace the notice board."))
    if d.long or d.chance(0.4):
        items.insert(d.rng.randint(0, len(items)), " ".join(_asides(d, d.rng.randint(1, 3))))
    actions = [d.pick(f"{o} to {t} by {dl}.", f"{t[0].upper()}{t[1:]} - {o}, by {dl}", f"{o}: {t} (due {dl})")
               for o, (t, _), dl in zip(owners, tasks, deadlines)]
    lines.append(d.heading("Matters discussed"))
    lines.append(_bullets(d, items, numbered=d.chance(0.6)))
    lines.append(d.heading("Action points"))
    lines.append(_bullets(d, actions))
    lines.append(d.pick(f"Next meeting: {nxt}, {nxt_time}.", f"The next meeting will be on {nxt} at {nxt_time}.",
                        f"Date of next meeting: {nxt} ({nxt_time})"))
    d.ask(chair, ["Who led the meeting?", "Who presided over the meeting?"], "name")
    d.ask(scribe, ["Who recorded the minutes?", "Who took notes at the meeting?", "Who wrote up these minutes?"], "name")
    d.ask(absent, ["Which member could not attend?", "Who was absent from the meeting?"], "name")
    d.ask(balance, ["How much money does the group have in its account?", "What balance did the treasurer give?"], "amount")
    d.ask(treasurer, ["Who is in charge of the finances?", "Who gave the financial report?"], "name")
    d.ask(venue.removeprefix("the "), [f"Where will the {event} be held?", f"What venue was chosen for the {event}?"], "place")
    d.ask(event_day, [f"When is the {event}?", f"On what date will the {event} happen?"], "date")
    d.ask(yes, ["How many members supported the notice board proposal?", "How many votes were cast in favour?"], "number")
    d.ask(no, ["How many members opposed the notice board proposal?", "How many votes were against?"], "number")
    for o, (_, desc), dl in zip(owners, tasks, deadlines):
        d.ask(o, [f"Who is responsible for {desc}?", f"Whose action point covers {desc}?"], "name")
        d.ask(dl, [f"What is the deadline for {desc}?", f"When is {desc} due?"], "date")
    d.ask(nxt, ["When will the group meet again?", "On what date is the following meeting?"], "date")
    return "\n\n".join(lines)


def _table_staff(d: Doc) -> tuple[str, list[str], list[list[str]]]:
    depts = d.sample(("Accounts", "Sales", "Facilities", "Legal", "Research", "Dispatch", "Human Resources",
                      "Marketing", "IT Support", "Purchasing"), d.rng.randint(4, 7))
    rows = [[d.person(), dept, d.ext(), d.v("room")] for dept in depts]
    for name, dept, ext, room in d.sample(rows, 3):
        d.ask(ext, [f"What is {name}'s phone extension?", f"Which extension reaches {name}?"], "number")
        d.ask(name, [f"Who works in {dept}?", f"Which member of staff is in the {dept} department?"], "name")
        d.ask(dept, [f"Which department is {name} in?", f"In what team does {name} work?"], "phrase")
        d.ask(room, [f"Which office does {name} sit in?", f"Where can {name} be found?"], "code")
    return d.pick("Staff directory", f"{d.company()} - internal phone list", "Who's who"), ["Name", "Department", "Ext.", "Room"], rows


def _table_prices(d: Doc) -> tuple[str, list[str], list[list[str]]]:
    items = d.sample(W.PRODUCT_KINDS, d.rng.randint(4, 7))
    rows = [[it, d.v("code"), d.money(9, 480), d.num(0, 250)] for it in items]
    for item, code, price, stock in d.sample(rows, 3):
        d.ask(price, [f"How much does the {item} cost?", f"What is the price of a {item}?"], "amount")
        d.ask(code, [f"What is the item code of the {item}?", f"Which product code does the {item} have?"], "code")
        d.ask(item, [f"Which product has the code {code}?", f"What item is sold for {price}?"], "object")
        d.ask(stock, [f"How many {_plural(item)} are in stock?", f"How many {_plural(item)} are available?"], "number")
    return d.pick("Price list", f"{d.company()} catalogue, spring prices", "Current stock and prices"), \
        ["Item", "Code", "Price", "In stock"], rows


def _table_league(d: Doc) -> tuple[str, list[str], list[list[str]]]:
    teams = [d.v("team") for _ in range(d.rng.randint(4, 7))]
    played = d.rng.randint(18, 34)
    rows = []
    for t in teams:
        won = d.rng.randint(2, played - 4)
        lost = d.rng.randint(1, played - won - 1)
        drawn = played - won - lost
        rows.append([t, str(played), str(won), str(drawn), str(lost), str(3 * won + drawn)])
    rows.sort(key=lambda r: -int(r[5]))
    cells = [c for r in rows for c in r[1:]]
    for team, _, won, drawn, lost, pts in d.sample(rows, 3):
        d.ask(pts, [f"How many points do the {team} have?", f"What is the points total of the {team}?"], "number")
        d.ask(won, [f"How many games have the {team} won?", f"How many victories do the {team} have?"], "number")
        d.ask(lost, [f"How many matches have the {team} lost?", f"How many defeats have the {team} suffered?"], "number")
        if cells.count(pts) == 1:
            d.ask(team, [f"Which team has {pts} points?", f"Which side has collected {pts} points?"], "name")
    if rows[0][5] != rows[1][5]:
        d.ask(rows[0][0], ["Which team is top of the table?", "Who leads the league?"], "name")
    return d.pick("League table", f"{d.place()} district league - standings", "Standings after this weekend"), \
        ["Team", "P", "W", "D", "L", "Pts"], rows


def _table_trains(d: Doc) -> tuple[str, list[str], list[list[str]]]:
    n = d.rng.randint(4, 7)
    rows = [[t, d.place(), d.num(1, 12), d.ref(d.pick("", "IC ", "R"), 3)] for t in d.times(n, style=0)]
    for dep, dest, plat, train in d.sample(rows, 3):
        d.ask(dep, [f"When does the train to {dest} leave?", f"At what time is the {dest} service?"], "time")
        d.ask(plat, [f"From which platform does the {dep} train go?", f"Which platform serves {dest}?"], "number")
        d.ask(dest, [f"Where is the {dep} train heading?", f"What is the destination of train {train}?"], "place")
    return d.pick("Departures", f"{d.place()} station - next departures", "Timetable"), \
        ["Departs", "To", "Platform", "Train"], rows


def _table_classes(d: Doc) -> tuple[str, list[str], list[list[str]]]:
    classes = d.sample(("Pottery", "Yoga", "Beginners' Spanish", "Life drawing", "Pilates", "Woodwork", "Choir",
                        "Watercolour", "Chess club", "Creative writing"), d.rng.randint(4, 6))
    days = d.shuffled(W.WEEKDAYS)
    rows = [[c, days[i], d.time(), d.first(), d.v("room")] for i, c in enumerate(classes)]
    for cls, day, start, teacher, room in d.sample(rows, 3):
        d.ask(teacher, [f"Who teaches {cls}?", f"Who runs the {cls} class?"], "name")
        d.ask(day, [f"On which day is {cls}?", f"What day of the week does {cls} meet?"], "date")
        d.ask(start, [f"What time does {cls} start?", f"When does the {cls} session begin?"], "time")
        d.ask(room, [f"In which room is {cls} held?", f"Where does the {cls} group meet?"], "code")
        d.ask(cls, [f"Which class does {teacher} lead?", f"What is held on {day}s?"], "phrase")
    return d.pick("Evening classes this term", f"{d.place()} Community Centre - weekly timetable", "Class schedule"), \
        ["Class", "Day", "Starts", "Tutor", "Room"], rows


def _tabular(d: Doc) -> str:
    title, header, rows = d.pick(_table_staff, _table_prices, _table_league, _table_trains, _table_classes)(d)
    parts = [d.heading(title), _grid(d, header, rows)]
    if d.chance(0.5):
        parts.append(d.pick(f"Last updated {d.date()}.", "Please report any errors to the office.",
                            "Figures are checked weekly.", f"Questions? Ask {d.person()}."))
    return "\n\n".join(parts)


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_TRAIL_KINDS = ("Ridge Loop", "Valley Walk", "Lakeside Path", "Forest Trail", "Coast Path", "Old Mill Circuit",
                "Quarry Walk", "Heath Way")
_TRAIL_NOTES = ("steep in places", "fine for children", "muddy after rain", "dogs on leads, please",
                "no shade, so bring water", "a café at the halfway point", "some stiles to climb")


def _list_walks(d: Doc) -> list[str]:
    unit = d.pick("km", "miles", "kilometres")
    pace = 2.5 if unit == "miles" else 4.0
    walks = []
    for kind in d.sample(_TRAIL_KINDS, d.rng.randint(3, 8 if d.long else 6)):
        dist = d.num(3, 24, "{} " + unit)
        hours = max(1, round(int(dist.split()[0]) / pace + d.rng.uniform(0, 1)))
        walks.append((f"{d.place()} {kind}", dist, f"{hours} hour{'s' if hours > 1 else ''}", d.place()))
    items = []
    for name, dist, hours, start in walks:
        items.append(d.pick(f"{name} - {dist}, about {hours}. Starts at the {start} car park; {d.pick(*_TRAIL_NOTES)}.",
                            f"{name} ({dist}, allow {hours}): set off from {start} church. {d.pick(*_TRAIL_NOTES).capitalize()}.",
                            f"{name}. From the green at {start}, {dist} there and back, roughly {hours}."))
    for i, (name, dist, hours, start) in d.sample(list(enumerate(walks)), 3):
        d.ask(name, [f"Which walk is listed {_ORDINALS[i]}?", f"What is walk number {i + 1} on the list?"], "place")
        d.ask(dist, [f"How long is the {name}?", f"What distance does the {name} cover?"], "amount")
        d.ask(hours, [f"How much time should you allow for the {name}?", f"Roughly how long does the {name} take?"], "time")
        d.ask(start, [f"Where does the {name} begin?", f"From which village do you set off for the {name}?"], "place")
    title = d.pick(f"{len(walks)} favourite walks around {d.place()}", "Weekend walks", "Walks for the autumn")
    return [d.heading(title), d.pick("Our pick for the season:", "", "Maps are at the visitor centre."), _bullets(d, items, True)]


def _book_title(d: Doc) -> str:
    return d.fresh(lambda: d.pick(f"The {d.pick(*W.COLORS).capitalize()} {d.pick(*W.OBJECTS).capitalize()}",
                                  f"Winter in {d.place()}", f"A {d.pick(*W.ANIMALS).capitalize()} at the Door",
                                  f"The Last Ferry to {d.place()}",
                                  f"{d.pick(*W.FIRST_NAMES)}'s {d.pick('Garden', 'Summer', 'War', 'Promise')}"))


def _list_books(d: Doc) -> list[str]:
    books = [(_book_title(d), d.person(), d.num(1951, 2023)) for _ in range(d.rng.randint(3, 6))]
    blurbs = ("a slow, funny family saga", "short, but it stays with you", "perfect for a long train journey",
              "a mystery with a very odd detective", "letters between two sisters", "the one everyone argued about")
    items = [d.pick(f"{t} by {a} ({y}) - {d.pick(*blurbs)}", f"{a}, {t} ({y})", f"\"{t}\", {a}, {y}: {d.pick(*blurbs)}")
             for t, a, y in books]
    for t, a, y in d.sample(books, 3):
        d.ask(a, [f"Who wrote {t}?", f"Who is the author of {t}?"], "name")
        d.ask(y, [f"In what year did {t} come out?", f"When was {t} published?"], "number")
        d.ask(t, [f"Which book on the list is by {a}?", f"What did {a} write, according to the list?"], "phrase")
    club = d.pick(f"{d.place()} Library book group", "Book club", "Reading circle")
    return [d.heading(f"{club}: reading list"), d.pick("Meetings are on the last Tuesday of the month.", "Suggestions welcome.", ""),
            _bullets(d, items)]


def _list_packing(d: Doc) -> list[str]:
    people = [d.first() for _ in range(d.rng.randint(3, 5))]
    things = d.sample(W.OBJECTS, d.rng.randint(4, 10 if d.long else 7))
    who = [d.pick(*people) for _ in things]
    counts = [d.num(2, 12) if d.chance(0.4) else "" for _ in things]
    items = []
    for thing, person, n in zip(things, who, counts):
        name = f"{n} {_plural(thing)}" if n else thing
        items.append(d.pick(f"{name} ({person})", f"{name} - {person} brings", f"{person}: {name}"))
    place, leave = d.place(), d.date()
    for thing, person, n in d.sample(list(zip(things, who, counts)), 4):
        if who.count(person) == 1:
            what = _plural(thing) if n else thing
            d.ask(person, [f"Who is bringing the {what}?", f"Which of the group packs the {what}?"], "name")
        if n:
            d.ask(n, [f"How many {_plural(thing)} should be packed?", f"What number of {_plural(thing)} are needed?"], "number")
    d.ask(place, ["Where is the group going?", "What is the destination of the trip?"], "place")
    d.ask(leave, ["When does the group set off?", "On what date do they leave?"], "date")
    head = d.pick(f"Packing list - {place} trip, leaving {leave}", f"Camping at {place} ({leave}): who brings what")
    return [d.heading(head), _bullets(d, items), d.pick("Food we buy there.", "Tick things off when packed!", "")]


def _listing(d: Doc) -> str:
    parts = d.pick(_list_walks, _list_books, _list_packing)(d)
    return "\n\n".join(p for p in parts if p)


def _log(d: Doc) -> str:
    hosts = [d.fresh(lambda: f"{d.pick(*W.CODE_WORDS).lower()}-{d.rng.randint(1, 40):02d}") for _ in range(4)]
    users = [d.fresh(lambda: d.pick(*W.FIRST_NAMES).lower() + d.pick("", ".ops", "_adm", "")) for _ in range(3)]
    ips = [d.fresh(lambda: f"10.{d.rng.randint(0, 255)}.{d.rng.randint(0, 255)}.{d.rng.randint(2, 254)}") for _ in range(3)]
    files, size, pct, code, ms = d.big(1200, 90000), d.num(40, 9000, "{} MB"), d.num(86, 99, "{}%"), d.ref("E", 4), d.num(1500, 30000)
    svc, days, tries = d.pick("billing", "search-api", "mailer", "scheduler", "thumbnailer"), d.num(3, 29), d.num(3, 12)
    stamps = sorted(d.clock() for _ in range(d.rng.randint(8, 9)))
    t_start, t_disk, t_login, t_fail, t_err, t_restart, t_done = d.sample(stamps, 7)
    t_start, t_done = min(t_start, t_done), max(t_start, t_done)
    at = {t_start: ("INFO", "backup", f"nightly backup started on {hosts[0]}"),
          t_done: ("INFO", "backup", f"backup finished: {files} files, {size} copied"),
          t_disk: ("WARN", "monitor", f"disk usage {pct} on {hosts[1]}:/var"),
          t_login: ("INFO", "sshd", f"accepted login for {users[0]} from {ips[0]}"),
          t_fail: ("WARN", "sshd", f"{tries} failed password attempts for {users[1]} from {ips[1]}"),
          t_err: ("ERROR", svc, f"upstream returned {code} after {ms} ms"),
          t_restart: ("INFO", "systemd", f"{svc}.service restarted by {users[2]}")}
    # not every event in every excerpt; the backup pair stays, as its start and end are asked about
    for t in d.sample([t_disk, t_login, t_fail, t_err, t_restart], d.rng.randint(0, 1 if d.long else 2)):
        del at[t]
        stamps.remove(t)
    noise = ("health check ok", "cache warmed (312 keys)", "rotated log files", "config reloaded", "queue empty",
             "heartbeat", "connection pool resized")
    day = d.date("{y}-{m:02d}-{d:02d}")
    syslog = d.chance(0.3)
    short = d.chance(0.5)  # the day only in the heading, as in an excerpt someone pasted
    lines = []
    for t in stamps:
        level, comp, msg = at.get(t, ("DEBUG" if d.chance(0.3) else "INFO", d.pick("app", "cron", "monitor"), d.pick(*noise)))
        if syslog:
            host = hosts[0] if comp == "backup" else d.pick(*hosts[2:])
            lines.append(f"{day[5:]} {t} {host} {comp}: {msg}")
        elif short:
            lines.append(f"[{t}] {level} {comp}: {msg}")
        else:
            lines.append(f"{day} {t} {level:<5} [{comp}] {msg}")
    if d.chance(0.5):
        lines.append(f"{day} {d.clock()} INFO  [certbot] certificate for {hosts[3]}.internal expires in {days} days")
        d.ask(days, [f"In how many days does the certificate of {hosts[3]} run out?", "How long until the certificate lapses?"], "number")
    d.ask(t_done, ["At what time did the backup complete?", "When was the backup done?"], "time")
    d.ask(t_start, ["When did the backup begin?", "What time was the backup kicked off?"], "time")
    d.ask(files, ["How many files did the backup copy?", "What number of files were saved by the backup?"], "number")
    d.ask(size, ["How much data did the backup transfer?", "What volume of data was backed up?"], "amount")
    d.ask(hosts[1], ["Which server was running out of disk space?", "On which machine did the storage almost fill up?"], "code")
    d.ask(pct, [f"How full was the disk on {hosts[1]}?", "What disk usage level triggered the warning?"], "number")
    d.ask(ips[0], [f"From which address did {users[0]} connect?", f"What IP did {users[0]} sign in from?"], "code")
    d.ask(users[1], [f"Whose password was repeatedly entered wrong from {ips[1]}?", "Which account saw failed sign-in attempts?"], "name")
    d.ask(tries, [f"How many times did {users[1]} fail to authenticate?", "How many bad password tries were logged?"], "number")
    d.ask(code, [f"What error code did the {svc} component report?", f"Which code did {svc} fail with?"], "code")
    d.ask(users[2], [f"Who restarted the {svc} service?", f"Which user rebooted {svc}?"], "name")
    d.ask(t_err, [f"At what time did {svc} log an error?", f"When did the {svc} failure occur?"], "time")
    header = d.pick(f"--- excerpt from /var/log/{d.pick('syslog', 'app.log', 'ops/current')}, {day} ---", f"Log for {day}:") \
        if short or d.chance(0.5) else ""
    return "\n".join(([header] if header else []) + lines)


def _say(d: Doc, style: int, who: str, text: str, stamps: list[str]) -> str:
    if style == 0:
        return f"{who}: {text}"
    t = stamps.pop(0)
    return (f"[{t}] {who}: {text}", f"{who} ({t}): {text}", f"{t} <{who}> {text}")[style - 1]


def _chat_dinner(d: Doc, a: str, b: str, c: str) -> list[tuple[str, str]]:
    away, back, day = d.first(), d.date(), d.pick(*W.WEEKDAYS)
    rest = d.pick(f"{d.v('surname')}'s", f"the {d.place()} Arms", f"Café {d.v('surname')}", f"the {d.pick(*W.COLORS).capitalize()} Lantern")
    t, n, seats, where, thing, owner = d.time(), d.num(4, 12), d.num(3, 7), d.place(), d.v("object"), d.first()
    lines = [(a, f"are we still on for {day}?"),
             (b, d.pick(f"yes! booked {rest} for {t}, table for {n}", f"Yep, {rest} at {t}. Said we'd be {n}.")),
             (c, d.pick(f"great, I can drive. {seats} seats in my car", f"I'll drive, room for {seats} if anyone wants a lift")),
             (a, d.pick(f"{away} can't make it btw, she's in {where} till {back}", f"FYI {away} is stuck in {where} until {back}")),
             (b, f"shame. can someone return the {thing} to {owner}?"),
             (c, d.pick("I'll do it", "on it", "leave it with me")),
             (a, d.pick("perfect, see you all there", "👍", "sorted then"))]
    rest_a = rest.removeprefix("the ")
    d.ask(rest_a, ["Which restaurant is the dinner at?", "Where is the group eating?"], "place")
    d.ask(b, ["Who made the reservation?", "Which person booked the table?"], "name")
    d.ask(t, ["What time is the table for?", "When should everyone arrive at the restaurant?"], "time")
    d.ask(n, ["How many people is the booking for?", "For how many diners was the table reserved?"], "number")
    d.ask(c, ["Who is offering to drive?", f"Who will give back the {thing}?", "Who has a car?"], "name")
    d.ask(seats, [f"How many people fit in {c}'s car?", "How many passengers can the driver take?"], "number")
    d.ask(where, [f"Where is {away} at the moment?", f"In which town is {away} stuck?"], "place")
    d.ask(back, [f"Until when is {away} away?", f"When will {away} be back?"], "date")
    d.ask(owner, [f"To whom does the {thing} belong?", f"Who should get the {thing} back?"], "name")
    d.ask(away, ["Which friend will miss the dinner?", "Who cannot come?"], "name")
    return lines


def _chat_build(d: Doc, a: str, b: str, c: str) -> list[tuple[str, str]]:
    proj, host, ticket, secs, asker, build = d.v("codename"), d.fresh(lambda: f"ci-runner-{d.rng.randint(2, 40)}"), \
        d.v("code"), d.num(30, 300, "{} seconds"), d.first(), d.ref("#", 4)
    lines = [(a, d.pick(f"heads up: {proj} build is red on {host} since this morning", f"anyone else seeing {proj} fail on {host}?")),
             (b, d.pick(f"my bad, that's the config change from {ticket}. reverting",
                        f"that'll be me - {ticket} changed the config. rolling it back")),
             (c, f"while you're in there, can you raise the timeout to {secs}? {asker} asked for it last week"),
             (b, d.pick(f"done, pushed as build {build}", f"ok, build {build} has both changes")),
             (a, d.pick("green again, thanks", "confirmed fixed", "nice, all passing"))]
    d.ask(host, ["Which machine showed the failing build?", "On what runner did the build break?"], "code")
    d.ask(b, ["Who caused the failure?", "Who rolled back the change?", "Which person said the breakage was their fault?"], "name")
    d.ask(ticket, ["Which ticket introduced the problem?", "What change request broke the build?"], "code")
    d.ask(secs, ["What new timeout was requested?", "To what value should the timeout go up?"], "time")
    d.ask(asker, ["Who originally wanted a longer timeout?", "Whose request was the timeout change?"], "name")
    d.ask(build, ["What is the number of the build with the fix?", "Which build contains the repair?"], "code")
    d.ask(a, ["Who first reported the broken build?", "Who confirmed that things work again?"], "name")
    return lines


def _chat_gift(d: Doc, a: str, b: str, c: str) -> list[tuple[str, str]]:
    color, thing, shop, price = d.v("color"), d.v("object"), d.f("{surname}'s"), d.money(12, 160)
    lost_in, host, when, start = d.place(), d.first(), d.date(), d.time()
    lines = [(a, f"ok so for mum's birthday - found a {color} {thing} at {shop}, {price}"),
             (b, d.pick(f"oh she'll love that, she lost hers in {lost_in}", f"perfect, hers got left behind in {lost_in}")),
             (c, "I'll chip in. how much each?"),
             (a, d.pick("a third each, I'll send details", "split three ways")),
             (c, d.pick(f"and the party is at {host}'s, {when} from {start} right?", f"{host} is hosting, {when}, {start} start")),
             (b, d.pick("yes. don't tell her!!", "yep, keep it quiet"))]
    d.ask(shop, [f"In which shop did {a} find the present?", "Where can the gift be bought?"], "place")
    d.ask(price, ["How much does the gift cost?", "What is the price of the present?"], "amount")
    d.ask(color, [f"What colour is the {thing}?", "Which colour did they choose?"], "color")
    d.ask(thing, ["What are they giving their mother?", "What is the birthday present?"], "object")
    d.ask(lost_in, ["Where did their mother lose her old one?", f"In which town did mum leave her {thing}?"], "place")
    d.ask(host, ["At whose home is the party?", "Who is hosting the celebration?"], "name")
    d.ask(start, ["When does the party start?", "At what time does the celebration begin?"], "time")
    d.ask(when, ["On what date is the party?", "When is the birthday celebration?"], "date")
    return lines


def _chat_stamps(d: Doc, n: int) -> list[str]:
    """Message times a few minutes apart, as a chat really runs."""
    minute, out = d.rng.randint(7 * 60, 21 * 60), []
    for _ in range(n):
        minute += d.rng.randint(1, 14)
        while not d._is_fresh(stamp := f"{minute // 60 % 24:02d}:{minute % 60:02d}"):
            minute += 1
        d.inv.used.add(stamp)
        out.append(stamp)
    return out


def _chat(d: Doc) -> str:
    a, b, c = d.first(), d.first(), d.first()
    lines = d.pick(_chat_dinner, _chat_build, _chat_gift)(d, a, b, c)
    style = d.rng.randrange(4)
    stamps = _chat_stamps(d, len(lines)) if style else []
    out = [_say(d, style, who, text if d.chance(0.6) else text[:1].upper() + text[1:], stamps) for who, text in lines]
    head = d.pick("", f"Group chat: {d.pick('Friday plans', 'the usual suspects', 'family', 'team')}", "Chat transcript")
    return "\n".join(([head, ""] if head else []) + out)


def _story(d: Doc) -> str:
    hero = d.first()
    pool: list[Callable[[], str]] = []

    def letter() -> str:
        town, years, sib = d.place(), d.num(3, 40), d.first()
        d.ask(years, [f"For how many years had {hero} been in {town} when the letter came?",
                      f"How long had {hero} been living there, in years?"], "number")
        d.ask(sib, [f"Who wrote to {hero}?", "Whose letter reached her?", f"What is the name of {hero}'s brother?"], "name")
        d.ask(town, [f"Where was {hero} living at the start of the story?", f"In which town did {hero} make her home?"], "place")
        return d.pick(f"{hero} had lived in {town} for {years} years when the letter from her brother {sib} arrived.",
                      f"The letter came from {sib}, her brother, in her {years}th year in {town}."
                      if years not in ("11", "12", "13") and not years.endswith(("1", "2", "3")) else
                      f"When {sib}'s letter arrived, {hero} had been in {town} for {years} years.")

    def bus() -> str:
        town, wait = d.place(), d.v("minutes")
        d.ask(wait, [f"How long did {hero} stand at the stop?", f"For how much time was {hero} kept waiting?"], "time")
        d.ask(town, ["Where had the bus come from?", "From which town did the bus arrive?"], "place")
        return d.pick(f"By the time the bus from {town} pulled in, {hero} had already waited {wait} at the stop.",
                      f"She waited {wait} for the {town} bus, which was late as always.")

    def lend() -> str:
        friend, shop = d.first(), d.pick("bakery", "bookshop", "ironmonger's", "flower stall", "repair shop")
        street, thing = d.v("street"), d.v("object")
        d.ask(friend, [f"Who lent {hero} the {thing}?", f"From whom did {hero} borrow something?"], "name")
        d.ask(thing, [f"What did {friend} give {hero} to borrow?", f"Which item did {hero} borrow?"], "object")
        d.ask(street, [f"On which street was {friend}'s {shop}?", f"Where was the {shop} located?"], "place")
        return d.pick(f"{friend}, who ran the {shop} on {street}, lent her a {thing} and would not hear of payment.",
                      f"It was {friend} from the {shop} on {street} who, without a word, pressed a {thing} into her hands.")

    def coins() -> str:
        n, town, relative = d.num(12, 400), d.place(), d.pick("grandmother", "great-uncle", "aunt")
        d.ask(n, ["How many coins were concealed?", f"How many silver pieces had the {relative} put away?"], "number")
        d.ask(town, ["Where was the cottage?", "In which village stood the cottage with the hidden coins?"], "place")
        return d.pick(f"Years before, their {relative} had hidden {n} silver coins under the floor of the cottage at {town}.",
                      f"Under the floorboards of the cottage at {town} lay {n} silver coins, put there long ago by their {relative}.")

    def door() -> str:
        day, color = d.pick(*W.WEEKDAYS), d.v("color")
        d.ask(day, ["On what day was the open door discovered?", "When did someone finally spot the door?"], "date")
        d.ask(color, ["What colour was the door that had been left open?", "Which colour was the neglected door painted?"], "color")
        return d.pick(f"It was not until {day} that anyone noticed the {color} door had been left open.",
                      f"Nobody saw that the {color} door stood open until {day}.")

    def pet() -> str:
        animal, name = d.v("animal"), d.first()
        d.ask(name, [f"What was the {animal} called?", f"What name had they given the {animal}?"], "name")
        d.ask(animal, [f"What kind of animal was {name}?", f"What creature was {name}?"], "object")
        return d.pick(f"The old {animal} that slept by the stove, whom everyone called {name}, followed them down the lane.",
                      f"{name}, an elderly {animal} with one bad ear, trotted after them.")

    def tide() -> str:
        t, who = d.time(), d.first()
        d.ask(t, [f"At what time did {who} want to set off?", "When did they have to leave to catch the tide?"], "time")
        d.ask(who, ["Who insisted on an early start?", "Who was holding the map?"], "name")
        return d.pick(f"\"We leave at {t},\" said {who}, folding the map, \"or we miss the tide.\"",
                      f"{who} folded the map and announced that they would leave at {t}, tide or no tide.")

    def journey() -> str:
        town, hours = d.place(), d.num(2, 14, "{} hours")
        d.ask(hours, [f"How long did it take to reach {town}?", f"How much time did the trip to {town} take?"], "time")
        d.ask(town, ["Where were they travelling to?", "What was the destination of the rainy journey?"], "place")
        return d.pick(f"The journey to {town} took {hours}, most of it in the rain.",
                      f"It rained almost the whole {hours} it took them to get to {town}.")

    pool = [letter, bus, lend, coins, door, pet, tide, journey]
    chosen = [pool[0]] + d.sample(pool[1:], d.rng.randint(3, 6 if d.long else 4))
    fillers = ["Nobody said much on the way.", "The wind had picked up by then.", "She remembered the smell of the harbour.",
               "There was nothing to do but wait.", "Somewhere a dog was barking.", "The lane was narrower than she remembered.",
               "Later, she would laugh about it.", "The kettle was still warm."]
    sentences = [make() for make in chosen]
    for filler in d.sample(fillers, d.rng.randint(2, 5)):
        sentences.insert(d.rng.randint(1, len(sentences)), filler)
    title = d.pick("", f"{d.pick('The Cottage at', 'A Winter in', 'Letters from')} {d.place()}", "Chapter One")
    return (title + "\n\n" if title else "") + _paragraphs(d, sentences, 2, 4)


def _news_award(d: Doc) -> list[str]:
    winner, job, town, day = d.person(), d.v("job"), d.place(), d.pick(*W.WEEKDAYS)
    prize = f"{d.place()} Prize for {d.pick('Short Fiction', 'Local History', 'Photography', 'Invention', 'Poetry')}"
    rival, purse, judge, entries = d.person(), d.money(500, 20000, cents=False), d.person(), d.big(140, 4000)
    d.ask(winner, ["Who is this year's winner?", f"Which person received the {prize}?"], "name")
    d.ask(job, ["What does the winner do for a living?", "What is the winner's occupation?"], "phrase")
    d.ask(town, ["Where does the winner come from?", "What is the winner's home town?"], "place")
    d.ask(day, ["On which day was the result announced?", "When did the organisers name the winner?"], "date")
    d.ask(rival, ["Who did the winner expect to win?", "Which other contender did the winner think would get the prize?"], "name")
    d.ask(purse, ["How much money comes with the prize?", "What is the prize worth?"], "amount")
    d.ask(judge, ["Who chaired the judging panel?", "Who was head of the judges?"], "name")
    d.ask(entries, ["How many entries were submitted?", "How many works did the judges read?"], "number")
    return [d.pick(f"{_surname(winner)} takes {prize}", f"Local {job} wins {prize}"),
            f"{winner}, a {job} from {town}, has won this year's {prize}, organisers announced on {day}.",
            d.pick(f"\"I honestly thought {rival} would get it,\" said {_surname(winner)}, who receives {purse}.",
                   f"The award, worth {purse}, came as a surprise to {_surname(winner)}, who had tipped {rival} to win."),
            d.pick(f"The judges, led by {judge}, read {entries} entries this year.",
                   f"A panel chaired by {judge} had {entries} entries to choose from.")]


def _news_bridge(d: Doc) -> list[str]:
    bridge, town, (shut, reopen) = f"{d.v('surname')} Bridge", d.place(), d.dates(2)
    cost = d.money(40, 900, cents=False)
    cost, firm, detour, extra, official = d.scaled(cost, d.pick(",000", " million")), d.company(), \
        f"{d.place()} Road", d.v("minutes"), d.person()
    d.ask(reopen, [f"When is the {bridge} expected to be usable again?", "On what date should traffic return to the bridge?"], "date")
    d.ask(shut, [f"From what date will the {bridge} be shut?", "When do the repairs start?"], "date")
    d.ask(cost, ["How much will the repair work cost?", "What is the price of the repairs?"], "amount")
    d.ask(firm, ["Which company is doing the repairs?", "Who has the contract for the work?"], "name")
    d.ask(detour, ["What route should drivers take instead?", "Which road is the diversion?"], "place")
    d.ask(extra, ["How much longer will journeys take?", "How much time does the diversion add?"], "time")
    d.ask(official, ["Who is the county's head of highways?", "Which official spoke for the county?"], "name")
    d.ask(town, [f"In which town is the {bridge}?", "Where is the bridge being repaired?"], "place")
    return [d.pick(f"{bridge} to close for repairs", f"{town}: bridge closure from {shut}"),
            d.pick(f"The {bridge} in {town} will close to traffic from {shut}, the county said, and is expected to reopen on {reopen}.",
                   f"Drivers in {town} face months of disruption: the {bridge} shuts on {shut} and should not reopen before {reopen}."),
            d.pick(f"The work, costing {cost}, is being carried out by {firm}.",
                   f"{firm} won the {cost} contract for the repairs."),
            d.pick(f"Motorists are advised to use {detour} instead, which adds about {extra} to most journeys.",
                   f"Signs will direct traffic along {detour}; {official}, the county's head of highways, warned of delays of around {extra}."),
            f"\"We know this is inconvenient,\" said {official}. \"The alternative was closing it for good.\""]


def _news_shop(d: Doc) -> list[str]:
    shop, street, town, owner, partner = d.pick("bakery", "bicycle repair shop", "bookshop", "greengrocer's", "café"), \
        d.v("street"), d.place(), d.person(), d.person()
    jobs, before = d.num(3, 30), d.v("job")
    opens = d.fresh(lambda: d._fmt_time(d.rng.randint(7, 10), d.rng.choice((0, 15, 30, 45)), d.time_style))
    closes = d.fresh(lambda: d._fmt_time(d.rng.randint(16, 21), d.rng.choice((0, 15, 30, 45)), d.time_style))
    d.ask(owner, [f"Who runs the new {shop}?", "Who is the owner of the new business?"], "name")
    d.ask(partner, [f"With whom does {_surname(owner)} run the shop?", "Who is the owner's business partner?"], "name")
    d.ask(street, ["Where has the shop opened?", f"On what street is the new {shop}?"], "place")
    d.ask(jobs, ["How many people will work there?", "How many jobs does the shop create?"], "number")
    d.ask(opens, ["What time does the shop open?", "When do the doors open each morning?"], "time")
    d.ask(closes, ["Until what time is the shop open?", "When does it close in the evening?"], "time")
    d.ask(before, [f"What did {_surname(owner)} work as before?", f"What was {_first_name(owner)}'s previous job?"], "phrase")
    return [d.pick(f"New {shop} opens on {street}", f"{town} welcomes a new {shop}"),
            d.pick(f"A new {shop} has opened on {street} in {town}, run by {owner} and her partner {partner}.",
                   f"{owner} and {partner} have opened a {shop} on {street}, {town}."),
            d.pick(f"{_surname(owner)}, who worked as a {before} for ten years, said the shop would employ {jobs} people.",
                   f"The business will create {jobs} jobs, according to {_surname(owner)}, a former {before}."),
            d.pick(f"It is open from {opens} until {closes}, Monday to Saturday.", f"Opening hours are {opens} to {closes}.")]


def _news(d: Doc) -> str:
    head, *body = d.pick(_news_award, _news_bridge, _news_shop)(d)
    dateline = d.pick("", f"{d.place().upper()} - ", f"By {d.person()}\n\n")
    if d.long:
        body.insert(len(body) - 1, " ".join(_asides(d, 3, world=True)))
    text = dateline + " ".join(body[:2]) + "\n\n" + " ".join(body[2:])
    return f"{head}\n\n{text}"


def _blog(d: Doc) -> str:
    if d.chance(0.5):
        days, start, end, first_day = d.num(3, 14), d.place(), d.place(), d.num(9, 38, d.pick("{} km", "{} miles", "{} kilometres"))
        host, cafe, dish, price, nxt = d.person(), f"the {d.place()} Tearoom", d.v("dish"), d.money(4, 30, cents=True), d.place()
        d.ask(days, ["How many days did the walk last?", "For how long was the author on the trail, in days?"], "number")
        d.ask(start, ["Where did the walk begin?", "From which town did the writer set off?"], "place")
        d.ask(end, ["Where did the walk finish?", "At which town did the trip end?"], "place")
        d.ask(first_day, ["How far did the writer walk on the first day?", "What distance was covered on day one?"], "amount")
        d.ask(host, ["Who ran the guesthouse?", "What was the landlady's name?"], "name")
        d.ask(cafe.removeprefix("the "), ["Where did the author have the best meal?",
                                          "Which café served the writer's favourite food?"], "place")
        d.ask(price, [f"How much did the {dish} cost?", "What was the price of the best meal?"], "amount")
        d.ask(nxt, ["Where does the writer plan to go next year?", "What is the next destination?"], "place")
        sentences = [d.pick(f"I finally did it: {days} days on foot from {start} to {end}.",
                            f"Back home after {days} days walking the coast between {start} and {end}, and my feet have opinions."),
                     d.pick(f"Day one was the hardest, {first_day} in sideways rain.", f"The first day alone was {first_day}, mostly uphill."),
                     d.pick(f"We stayed in a tiny guesthouse run by a woman called {host}, who insisted on drying our boots by the fire.",
                            f"Our host on the second night, {host}, had walked the route herself twice."),
                     d.pick(f"Best meal of the trip: the {dish} at {cafe}, {price} and worth every penny.",
                            f"If you go, the {dish} at {cafe} ({price}) is the thing to order."),
                     d.pick(f"Next year I'm thinking {nxt}. Suggestions welcome in the comments!", f"{nxt} is on the list for next summer.")]
        title = d.pick(f"{start} to {end} on foot", "Walking the coast: what I learned", "Trip report")
    else:
        weight = d.num(12, 140, d.pick("{} kg", "{} kilos", "{} pounds"))
        crop, pest, name, seeds, price, neighbour = d.v("ingredient"), d.v("animal"), d.first(), \
            d.num(20, 300), d.money(2, 20, cents=True), d.person()
        d.ask(weight, [f"How many {crop} did the plot produce?", f"What was the {crop} harvest?"], "amount")
        d.ask(pest, ["Which animal caused trouble in the garden?", "What creature kept raiding the plot?"], "object")
        d.ask(name, ["What is the name of the sourdough starter?", "What did the writer call the starter?"], "name")
        d.ask(seeds, ["How many seeds did the writer get for the money?", "What was the seed count of the packet?"], "number")
        d.ask(price, ["How much did the seed packet cost?", "What did the writer pay for the seeds?"], "amount")
        d.ask(neighbour, ["Which neighbour gave advice?", "Who recommended the netting?"], "name")
        sentences = [d.pick(f"What a year on the allotment: {weight} of {crop}, which is more than we can possibly eat.",
                            f"We weighed the {crop} last night and got {weight}, a record for us."),
                     d.pick(f"The only real trouble was a {pest} that found its way under the fence every night.",
                            f"A {pest} had most of the lettuce before we noticed."),
                     d.pick(f"On the advice of {neighbour} from the next plot, we put up netting, and that mostly fixed it.",
                            f"{neighbour}, two plots down, lent us some netting and saved the rest."),
                     d.pick(f"The seeds were a {price} packet of {seeds} from the market, so not bad value for a whole season.",
                            f"All of it came from one packet of {seeds} seeds that cost {price}."),
                     d.pick(f"Meanwhile my sourdough starter, {name}, is still alive and very demanding.",
                            f"In other news, {name} the sourdough starter turned one this month.")]
        title = d.pick("Allotment diary: the big harvest", "End of season notes", "This month in the garden")
    if d.long:
        sentences.insert(2, " ".join(_asides(d, 2, world=True)))
    sentences = sentences[:1] + d.shuffled(sentences[1:-1]) + sentences[-1:]
    posted = d.pick("", f"Posted {d.date()}", f"{d.date()} · {d.num(2, 9)} min read")
    return "\n\n".join(p for p in (title, posted, _paragraphs(d, sentences, 1, 3)) if p)


def _spec(d: Doc) -> str:
    kind = d.pick(*W.PRODUCT_KINDS)
    models = [d.v("product") for _ in range(2 if d.chance(0.35) else 1)]
    maker = d.company()
    fields = [("Weight", lambda: d.fresh(lambda: f"{d.rng.randint(4, 240) / 10:g} kg")), ("Warranty", lambda: d.num(2, 7, "{} years")),
              ("Power", lambda: d.num(200, 2400, "{} W")), ("Noise level", lambda: d.num(28, 70, "{} dB")),
              ("Colour", lambda: d.v("color")), ("Part no.", lambda: d.v("code")), ("Price", lambda: d.money(30, 900)),
              ("Capacity", lambda: d.fresh(lambda: f"{d.rng.randint(5, 80) / 10:g} litres"))]
    fields = d.sample(fields, d.rng.randint(5, 8))
    values = {m: {name: make() for name, make in fields} for m in models}
    questions = {"Weight": ["How heavy is the {m}?", "What does the {m} weigh?"],
                 "Warranty": ["How long is the {m} guaranteed for?", "What guarantee period does the {m} have?"],
                 "Power": ["How much power does the {m} draw?", "What is the wattage of the {m}?"],
                 "Noise level": ["How loud is the {m}?", "How much noise does the {m} make?"],
                 "Colour": ["What colour is the {m}?", "In which colour does the {m} come?"],
                 "Part no.": ["What is the part number of the {m}?", "Which catalogue number does the {m} have?"],
                 "Price": ["How much does the {m} cost?", "What is the retail price of the {m}?"],
                 "Capacity": ["How much does the {m} hold?", "What is the capacity of the {m}?"]}
    types = {"Weight": "amount", "Warranty": "time", "Power": "number", "Noise level": "number", "Colour": "color",
             "Part no.": "code", "Price": "amount", "Capacity": "amount"}
    for m in models:
        for name, _ in d.sample(fields, 3):
            d.ask(values[m][name], [q.format(m=m) for q in questions[name]], types[name])
    d.ask(maker, [f"Who makes the {models[0]}?", f"Which company manufactures the {models[0]}?"], "name")
    title = d.pick(f"{' vs '.join(models)} {kind}", f"{kind.capitalize()} - technical data", "Product sheet")
    if len(models) == 1:
        m = models[0]
        rows = [(d.label("Model"), m), (d.label("Manufacturer"), maker)] + [(d.label(n), values[m][n]) for n, _ in fields]
        body = "\n".join(f"{k}: {v}" for k, v in rows) if d.chance(0.6) else _grid(d, ["Feature", "Value"], rows)
    else:
        body = _grid(d, ["", *models], [[n, *(values[m][n] for m in models)] for n, _ in fields])
        body = f"Both made by {maker}.\n\n{body}"
    extra = d.pick("", f"Made by {maker} for the European market.", "Specifications may change without notice.",
                   "Accessories sold separately.")
    return "\n\n".join(p for p in (d.heading(title), body, extra) if p)


def _itinerary(d: Doc) -> str:
    if d.chance(0.5):
        home, first_stop, second_stop, flight, hotel, hotel2 = d.place(), d.place(), d.place(), d.v("code"), \
            f"Hotel {d.v('surname')}", f"the {d.place()} Lodge"
        (t_dep, t_arr), t_tour, t_train, guide, boat = d.times(2), d.time(), d.time(), d.person(), d.f("{surname}'s boat")
        days = [("Day 1", [f"{t_dep} depart {home}, flight {flight}", f"{t_arr} arrive {first_stop}; transfer to {hotel}"]),
                ("Day 2", [f"{t_tour} harbour tour on {boat} with guide {guide}", "afternoon free"]),
                ("Day 3", [f"{t_train} train to {second_stop}", f"overnight at {hotel2}"])]
        d.ask(flight, [f"Which flight leaves {home}?", "What is the number of the outbound flight?"], "code")
        d.ask(first_stop, ["Where does the flight land?", "What is the first destination?"], "place")
        d.ask(hotel, ["Where does the group sleep on the first night?", f"Which hotel is booked in {first_stop}?"], "place")
        d.ask(t_tour, ["What time does the harbour tour start?", "When should guests be ready for the boat trip?"], "time")
        d.ask(guide, ["Who leads the harbour tour?", "What is the name of the guide?"], "name")
        d.ask(second_stop, ["Where does the train go on the third day?", "Which town is reached by rail?"], "place")
        d.ask(t_dep, ["When does the outbound flight take off?", f"At what time do travellers leave {home}?"], "time")
        d.ask(hotel2.removeprefix("the "), ["Where do travellers stay on the last night?", f"Which lodging is used in {second_stop}?"], "place")
        title = d.pick(f"Itinerary: {first_stop} and {second_stop}", "Your trip at a glance", f"Travel plan for {d.person()}")
    else:
        conf, rooms = f"{d.place()} {d.pick('Libraries', 'Beekeeping', 'Rail Heritage', 'Small Business')} Day", d.sample("ABCDEFG", 3)
        titles = d.sample(("Funding the next ten years", "What went wrong last winter", "Volunteers and how to keep them",
                           "Old tools, new tricks", "Measuring what matters", "Ten years of mistakes"), 3)
        slots = d.times(5)
        lunch, close = slots[2], slots[4]
        talks = [(t, d.pick("Keynote", "Workshop", "Talk", "Panel"), title_, d.person(), f"Hall {r}")
                 for t, title_, r in zip(slots[:2] + slots[3:4], titles, rooms)]
        talk_lines = [f"{t} {k}: \"{title_}\" - {who} ({room})" for t, k, title_, who, room in talks]
        days = [("Programme", talk_lines[:2] + [f"{lunch} lunch in the foyer", talk_lines[2], f"{close} close and raffle"])]
        for t, k, title_, who, room in d.sample(talks, 2):
            d.ask(who, [f"Who speaks about \"{title_}\"?", f"Which speaker is on at {t}?"], "name")
            d.ask(room, [f"Where does the {t} session take place?", f"In which hall can you hear {who}?"], "place")
            d.ask(t, [f"When is {_surname(who)}'s session?", f"At what time does {who} present?"], "time")
        d.ask(lunch, ["When is the lunch break?", "At what time is food served?"], "time")
        title = d.pick(conf, f"{conf} - schedule", f"Programme, {d.date()}")
    lines = [d.heading(title)]
    for day, items in days:
        lines.append(d.pick(f"{day}", f"{day.upper()}", f"{day}:"))
        lines.extend(("  " if d.head_style % 2 else "- ") + it for it in items)
    if d.long:
        lines.append("")
        lines.append(" ".join(_asides(d, 3, world=True)))
    lines.append(d.pick("", "Times are local.", "Please be in the lobby ten minutes early.", "Subject to change."))
    return "\n".join(lines).strip()


def _invoice(d: Doc) -> str:
    vendor, customer, street, town = d.company(), d.person(), d.v("street"), d.place()
    number, (issued, due) = d.ref(d.pick("INV-", "No. ", "#"), d.pick(4, 5)), d.dates(2)
    services = d.sample(("Window cleaning", "Boiler service", "Gutter repair", "Hedge trimming", "Carpet cleaning",
                         "Call-out fee", "Replacement valve", "Paint (tins)", "Labour (hours)", "Skip hire"), d.rng.randint(3, 5))
    lines, total = [], 0
    for s in services:
        qty = d.rng.randint(1, 9)
        unit = d.rng.randint(5, 240) * 100 + d.pick(0, 0, 50, 25, 99)
        lines.append((s, str(qty), d.amount(unit), d.amount(qty * unit)))
        total += qty * unit
    tax_rate = d.pick(0, 5, 10, 20)
    tax = total * tax_rate // 100
    grand = d.amount(total + tax)
    for s, qty, unit, line in d.sample(lines, 2):
        d.ask(unit, [f"What is the unit price for {s.lower()}?", f"How much is charged per unit of {s.lower()}?"], "amount")
        d.ask(qty, [f"How many units of {s.lower()} were billed?", f"What quantity of {s.lower()} appears on the bill?"], "number")
    d.ask(grand, ["What is the total amount due?", "How much does the customer have to pay altogether?"], "amount")
    d.ask(number, ["What is the invoice number?", "Which reference number does this bill carry?"], "code")
    d.ask(customer, ["Who is being billed?", "To whom is the invoice addressed?"], "name")
    d.ask(due, ["By what date must the bill be paid?", "When is payment due?"], "date")
    d.ask(issued, ["When was the invoice issued?", "On what date was the bill written?"], "date")
    d.ask(vendor, ["Which company sent the invoice?", "Who is the supplier?"], "name")
    d.ask(street, ["At what address does the customer live?", "Where should the bill be delivered?"], "place")
    head = [d.heading(vendor), d.pick("INVOICE", "Invoice", "TAX INVOICE"),
            f"{d.label('Invoice no.')}: {number}    {d.label('Date')}: {issued}",
            f"{d.pick('Bill to', 'Customer', 'To')}: {customer}, {street}, {town}"]
    table = _grid(d, ["Description", "Qty", "Unit price", "Amount"], lines)
    foot = [f"Subtotal: {d.amount(total)}"]
    if tax_rate:
        foot.append(f"VAT ({tax_rate}%): {d.amount(tax)}")
    foot.append(f"{d.pick('Total due', 'TOTAL', 'Amount payable')}: {grand}")
    foot.append(d.pick(f"Payment due by {due}.", f"Please pay by {due}, quoting the invoice number.",
                       f"Terms: payable on or before {due}."))
    return "\n".join(head) + "\n\n" + table + "\n\n" + "\n".join(foot)


def _receipt(d: Doc) -> str:
    shop, town, when, t = d.f("{surname}'s {kind}", kind=d.pick("Grocers", "Hardware", "Pharmacy", "Deli", "Garden Centre")), \
        d.place(), d.date(), d.time(style=0)
    goods = d.sample(W.INGREDIENTS + W.OBJECTS, d.rng.randint(3, 7))
    rows, total = [], 0
    for g in goods:
        cents = d.rng.randint(40, 4000)
        rows.append((g, d.amount(cents)))
        total += cents
    card, cashier, till = d.num(1000, 9999), d.first(), d.num(2, 19)
    tendered = d.amount(total)
    for g, price in d.sample(rows, 2):
        d.ask(price, [f"How much did the {g} cost?", f"What was paid for the {g}?"], "amount")
    d.ask(tendered, ["How much was spent in total?", "What was the total of the purchase?"], "amount")
    d.ask(card, ["What are the last four digits of the card used?", "Which card ending paid for the shopping?"], "number")
    d.ask(cashier, ["Who served the customer?", "What was the cashier's name?"], "name")
    d.ask(town, ["In which town is the shop?", "Where was the purchase made?"], "place")
    d.ask(t, ["At what time was the purchase made?", "When did the sale go through?"], "time")
    width = max(len(g) for g, _ in rows) + 4
    body = "\n".join(f"{g.upper() if d.head_style % 2 else g:<{width}}{p:>10}" for g, p in rows)
    return "\n".join([shop.upper(), f"{d.v('street')}, {town}", f"{when}  {t}  {d.pick('Till', 'POS')} {till}", "-" * 30,
                      body, "-" * 30, f"{'TOTAL':<{width}}{tendered:>10}",
                      d.pick(f"CARD ****{card}", f"Paid by card ending {card}", f"VISA xxxx{card}"),
                      d.pick(f"You were served by {cashier}", f"Cashier: {cashier}", f"Served by: {cashier}"),
                      d.pick("Thank you for shopping with us!", "Keep your receipt for returns within 28 days.", "")]).strip()


def _faq(d: Doc) -> str:
    venue = d.pick(f"the {d.place()} Folk Festival", f"{d.place()} Lido", f"the {d.place()} Ferry", f"{d.place()} Climbing Wall")
    station, every = d.place(), d.fresh(lambda: f"{d.rng.randrange(10, 61, 5)} minutes")
    car_park, road, day_ticket = d.v("color"), d.v("street"), d.money(3, 25)
    age, email_to, lost_place, dog_area, refund_days = d.num(12, 17), d.email(d.person(), d.company()), \
        d.pick("the information tent", "the ticket office", "the first-aid hut"), \
        d.pick("the lower deck", "the east field", "the garden area"), d.num(5, 30)
    pairs = [
        (d.pick("How do I get there?", "Is there public transport?"),
         f"Shuttle buses run from {station} station every {every} until late.", every,
         ["How often do the shuttle buses run?", "What is the interval between shuttles?"], "time"),
        (d.pick("Is there parking?", "Can I come by car?"),
         f"Yes, in the {car_park} car park off {road}; a day ticket is {day_ticket}.", day_ticket,
         ["How much is it to leave a car for the day?", "What does a day of parking cost?"], "amount"),
        ("Are children welcome?", f"Of course. Anyone under {age} must be with an adult at all times.", age,
         ["Up to what age must children be accompanied?", "Below which age is an adult required?"], "number"),
        ("I lost something. What now?", f"Ask at {lost_place}; unclaimed items are kept for a month.", lost_place,
         ["Where should you go to find lost property?", "Where are found items handed in?"], "place"),
        ("Can I bring my dog?", f"Dogs are allowed in {dog_area} only, and must stay on a lead.", dog_area,
         ["Where are dogs permitted?", "In which part may pets go?"], "place"),
        ("Can I get my money back?", f"Refunds are possible up to {refund_days} days before your visit.", refund_days,
         ["How many days ahead must you cancel to get a refund?", "What is the latest you can cancel for your money back, in days?"], "number"),
        ("Who do I contact?", f"Write to {email_to} and we'll answer within two working days.", email_to,
         ["What address should questions be sent to?", "Which e-mail address handles enquiries?"], "code"),
    ]
    # asked only when their answer made it into the text (see `_finish`)
    d.ask(station, ["From which station do the shuttles leave?", "Where do the buses start from?"], "place")
    d.ask(road, ["On which road is the car park?", "What street leads to the parking?"], "place")
    d.ask(car_park, ["Which car park should drivers use?", "By what colour is the car park known?"], "color")
    chosen = d.sample(pairs, d.rng.randint(4, 7))
    for _, _, ans, qs, ty in chosen:
        d.ask(ans, qs, ty)
    style = d.rng.randrange(4)
    out = [d.heading(d.pick(f"Frequently asked questions - {venue}", f"{venue}: FAQ", "Visitor questions"))]
    for q, a, *_ in chosen:
        out.append((f"Q: {q}\nA: {a}", f"Q. {q}\nA. {a}", f"{q}\n{a}", f"**{q}**\n{a}")[style])
    return "\n\n".join(out)


def _notice(d: Doc) -> str:
    variant = d.rng.randrange(3)
    if variant == 0:
        when, (t1, t2), firm, street, contact, phone = d.date(), d.times(2), d.company(), d.v("street"), d.person(), d.phone()
        d.ask(when, ["On what day will the supply be cut?", "When will residents have no water?"], "date")
        d.ask(t2, ["Until what time will the interruption last?", "When should the water come back on?"], "time")
        d.ask(t1, ["From what time will there be no water?", "At what hour does the interruption begin?"], "time")
        d.ask(firm, ["Which company is doing the work?", "Who is replacing the main?"], "name")
        d.ask(street, ["Where is the pipe being replaced?", "On which street is the work taking place?"], "place")
        d.ask(contact, ["Whom should residents contact with questions?", "Who is the contact person?"], "name")
        d.ask(phone, ["What number can residents call?", "Which telephone number is given for questions?"], "code")
        lines = [d.heading(d.pick("Notice to residents", "Water supply interruption", "Important: planned works")),
                 d.pick(f"The water will be switched off on {when} between {t1} and {t2} while {firm} replaces the main on {street}.",
                        f"On {when}, {firm} will be replacing the water main on {street}. There will be no supply from {t1} to {t2}."),
                 d.pick("Please fill a kettle beforehand.", "We apologise for the inconvenience.",
                        "Taps may run brown for a few minutes afterwards."),
                 d.pick(f"Questions: {contact}, {phone}.", f"If you have questions, {contact} can be reached on {phone}.")]
    elif variant == 1:
        animal, name, color, seen, street, reward, phone = d.v("animal"), d.first(), d.v("color"), d.pick(*W.WEEKDAYS), \
            d.v("street"), d.money(20, 300, cents=False), d.phone()
        d.ask(name, ["What is the missing pet called?", f"What name does the {animal} answer to?"], "name")
        d.ask(animal, [f"What kind of animal is {name}?", "What sort of pet has gone missing?"], "object")
        d.ask(seen, [f"When was {name} last seen?", "On which day was the pet last spotted?"], "date")
        d.ask(street, [f"Where was {name} seen for the last time?", "Near which street did the pet disappear?"], "place")
        d.ask(reward, ["How much is offered for the pet's return?", "What reward is promised?"], "amount")
        d.ask(color, [f"What colour is {name}'s collar?", "What colour collar does the pet wear?"], "color")
        d.ask(phone, ["What number should you ring if you find the pet?", "Which phone number is on the poster?"], "code")
        lines = [d.pick("LOST", "MISSING", "Have you seen me?"),
                 d.pick(f"{name}, a small {animal} with a {color} collar, last seen {seen} evening near {street}.",
                        f"Our {animal} {name} went missing on {seen} around {street}. Wearing a {color} collar."),
                 d.pick("Very friendly but shy.", "Needs medication.", "Please check sheds and garages."),
                 d.pick(f"REWARD {reward}. Call {phone}.", f"{reward} reward for safe return - phone {phone}, any time.")]
    else:
        event, day, t, hall, price, org, contact = d.pick("jumble sale", "quiz night", "ceilidh", "craft fair"), d.date(), d.time(), \
            f"{d.place()} Village Hall", d.money(1, 15, cents=d.chance(0.5)), \
            d.pick("the Friends of the Park", "the school PTA", "St. Anne's choir"), d.person()
        d.ask(day, [f"When is the {event}?", f"On what date does the {event} take place?"], "date")
        d.ask(t, [f"What time does the {event} start?", "When do the doors open?"], "time")
        d.ask(hall, [f"Where is the {event} being held?", "What is the venue?"], "place")
        d.ask(price, ["How much does it cost to get in?", "What is the entry fee?"], "amount")
        d.ask(contact, ["Who should you speak to about helping?", "Who is organising the volunteers?"], "name")
        lines = [d.heading(d.pick(f"{event.capitalize()}!", f"Coming soon: {event}", "All welcome")),
                 d.pick(f"Join {org} at {hall} on {day}, doors {t}.",
                        f"{org.capitalize()} invite you to a {event} on {day} at {hall}, from {t}."),
                 d.pick(f"Entry {price}, children free.", f"Tickets {price} on the door."),
                 d.pick(f"Offers of help to {contact}, please.", f"Volunteers wanted: speak to {contact}.")]
    if d.long:
        lines.insert(2, " ".join(_asides(d, 3)))
    return "\n\n".join(lines)


def _recipe(d: Doc) -> str:
    dish = f"{d.v('ingredient').capitalize()} and {d.v('spice')} {d.v('dish')}"
    serves, prep = d.num(2, 12), d.v("minutes")
    temp, bake, rest, source = d.fresh(lambda: f"{d.rng.randrange(150, 241, 10)}°C"), d.v("minutes"), \
        d.v("minutes"), d.person()
    main = dish.split()[0].lower()
    ingredients = []
    for _ in range(d.rng.randint(3, 5)):
        name = d.v("ingredient")
        unit = "ml" if name == "buttermilk" else d.pick("g", "g", "g", "grams")
        ingredients.append((d.fresh(lambda: f"{d.rng.randrange(20, 900, 10)} {unit}"), name))
    ingredients.append((d.num(1, 3, d.pick("{} tsp", "{} tbsp")), d.v("spice")))
    ingredients = d.shuffled(ingredients)
    lines = [d.heading(dish), d.pick(f"Serves {serves} | Prep {prep} | Oven {temp}", f"For {serves} people. Preparation: {prep}.",
                                     f"Makes enough for {serves}.")]
    if d.chance(0.6):
        lines.append(d.pick(f"From my aunt {source}'s handwritten notebook.", f"Recipe courtesy of {source}.",
                            f"{source} gave me this one years ago."))
        d.ask(source, ["Whose recipe is this?", "Who is credited with the recipe?"], "name")
    lines.append(d.heading("Ingredients"))
    lines.append(_bullets(d, [f"{q} {i}" for q, i in ingredients], numbered=False))
    lines.append(d.heading(d.pick("Method", "Steps", "Directions")))
    steps = [f"Heat the oven to {temp}." if "Oven" not in lines[1] else "Heat the oven.",
             f"Mix the {ingredients[0][1]} with the {main} and season well.",
             f"Bake for {bake}, until golden on top.",
             f"Leave to rest for {rest} before serving."]
    lines.append(_bullets(d, steps, numbered=True))
    for q, i in d.sample(ingredients, 2):
        d.ask(q, [f"How much {i} does the recipe need?", f"What quantity of {i} goes in?"], "amount")
    d.ask(serves, ["How many people does the dish feed?", "How many portions does it make?"], "number")
    d.ask(temp, ["What temperature should the oven be?", "How hot must the oven be?"], "number")
    d.ask(bake, ["How long does it stay in the oven?", "What is the baking time?"], "time")
    d.ask(rest, ["How long should it stand before it is served?", "For how long must the dish rest?"], "time")
    if f"Prep {prep}" in lines[1] or f"Preparation: {prep}" in lines[1]:
        d.ask(prep, ["How long does the preparation take?", "How much time is needed to get it ready before cooking?"], "time")
    return "\n\n".join(lines)


def _letter(d: Doc) -> str:
    sender, sender_street, sender_town, written = d.person(), d.v("street"), d.place(), d.date()
    to = d.person()
    lines = [f"{sender_street}\n{sender_town}", written]
    if d.chance(0.5):
        job, branch, start = d.v("job"), d.place(), d.date()
        salary, manager, org = d.scaled(d.money(18, 90, cents=False), ",000"), d.person(), d.company()
        lines += [f"Dear {d.pick('Mr', 'Ms', 'Dr')} {_surname(to)},",
                  d.pick(f"Following your interview, I am pleased to offer you the position of {job} at our {branch} branch.",
                         f"I am delighted to confirm that {org} would like you to join our {branch} branch as {job}."),
                  d.pick(f"Your first day will be {start}, and the starting salary is {salary} a year.",
                         f"We would like you to start on {start}, on an annual salary of {salary}."),
                  d.pick(f"On arrival, please ask for {manager}, who will show you around.",
                         f"{manager} will meet you at reception on your first morning.")]
        d.ask(job, ["What role is being offered?", "Which post has the candidate been given?"], "phrase")
        d.ask(branch, ["Where will the new employee work?", "At which branch is the job?"], "place")
        d.ask(start, ["When is the first working day?", "On what date does employment begin?"], "date")
        d.ask(salary, ["What is the annual pay?", "How much will the new hire earn per year?"], "amount")
        d.ask(manager, ["Who should the new employee ask for on arrival?", "Who will greet the newcomer?"], "name")
    else:
        product, shop_town, bought, receipt, days, refund = d.v("product"), d.place(), d.date(), d.v("code"), d.num(3, 40), d.money(20, 600)
        lines += [d.pick("Dear Sir or Madam,", f"Dear {to},"),
                  d.pick(f"On {bought} I bought a {product} from your {shop_town} shop (receipt {receipt}), "
                         f"and it stopped working after only {days} days.",
                         f"The {product} I purchased in your {shop_town} store on {bought} broke down {days} days later. "
                         f"The receipt number is {receipt}."),
                  d.pick(f"I would like a full refund of {refund}.", f"I am asking for the {refund} I paid to be returned."),
                  "I look forward to hearing from you."]
        d.ask(product, ["Which product is the complaint about?", "What item failed?"], "name")
        d.ask(shop_town, ["Where was the item purchased?", "In which town's shop was it bought?"], "place")
        d.ask(bought, ["When was the purchase made?", "On what date did the writer buy it?"], "date")
        d.ask(receipt, ["What is the receipt number?", "Which receipt reference is quoted?"], "code")
        d.ask(days, ["After how many days did the product fail?", "How long did it work, in days?"], "number")
        d.ask(refund, ["How much money does the writer want back?", "What refund is requested?"], "amount")
    if d.long:
        lines.insert(4, " ".join(_asides(d, 3)))
    lines.append(f"{d.pick('Yours sincerely', 'Yours faithfully', 'With best wishes', 'Kind regards')},\n{sender}")
    d.ask(sender, ["Who signed the letter?", "Who is the letter from?"], "name")
    d.ask(written, ["When was the letter written?", "What date does the letter carry?"], "date")
    d.ask(sender_town, ["In which town does the writer live?", "Where was the letter sent from?"], "place")
    return "\n\n".join(lines)


def _report(d: Doc) -> str:
    sections: list[tuple[str, list[str]]] = []
    if d.chance(0.5):
        site, inspector, (when, fixed_by) = d.f("{town} depot"), d.person(), d.dates(2)
        checked, expired, cost = d.num(20, 90), d.num(3, 15), d.money(100, 4000, cents=False)
        exits = d.num(2, 9)
        title = d.pick(f"Fire safety inspection - {site}", "Inspection report", f"Site visit: {site}")
        sections = [("Summary", [d.pick(f"{inspector} inspected the {site} on {when}.", f"The {site} was visited on {when} by {inspector}."),
                                 "Overall the site is in reasonable order, with one serious finding."]),
                    ("Findings", [d.pick(f"Of the {checked} extinguishers checked, {expired} were past their service date.",
                                         f"{expired} out of {checked} extinguishers had not been serviced in time."),
                                  d.pick(f"All {exits} emergency exits were clear.", f"The {exits} fire exits were unobstructed and signed.")]),
                    ("Recommendations", [d.pick(f"Replace the out-of-date units by {fixed_by}; estimated cost {cost}.",
                                                f"The expired extinguishers should be swapped before {fixed_by} (budget: {cost}).")])]
        d.ask(inspector, ["Who carried out the inspection?", "Which inspector visited the site?"], "name")
        d.ask(when, ["When did the inspection take place?", "On what date was the site visited?"], "date")
        d.ask(checked, ["How many extinguishers were examined in total?", "How many fire extinguishers were looked at?"], "number")
        d.ask(expired, ["How many extinguishers were overdue for service?", "How many units had expired?"], "number")
        d.ask(exits, ["How many emergency exits does the site have?", "How many fire exits were checked?"], "number")
        d.ask(fixed_by, ["By when must the expired units be replaced?", "What is the deadline for replacing the extinguishers?"], "date")
        d.ask(cost, ["How much will the replacements cost?", "What is the estimated budget for the fix?"], "amount")
    else:
        town, n, (start, end), top, second, pct, author = d.place(), d.num(120, 2400), d.dates(2), \
            d.pick("more benches", "better street lighting", "a weekly market", "safer crossings", "longer library hours"), \
            d.pick("more bins", "a skate park", "free parking on Sundays", "public toilets"), d.num(30, 80, "{}%"), d.person()
        title = d.pick(f"{town} residents' survey: results", "Survey report", f"What {town} wants: survey findings")
        sections = [("Method", [d.pick(f"{n} residents answered the survey between {start} and {end}.",
                                       f"The questionnaire ran from {start} to {end} and received {n} responses.")]),
                    ("Results", [d.pick(f"The most requested improvement was {top}, ahead of {second}.",
                                        f"{top[0].upper()}{top[1:]} came first; {second} was second."),
                                 d.pick(f"{pct} of respondents said they feel safe walking at night.",
                                        f"Asked about safety after dark, {pct} answered that they feel safe.")]),
                    ("Next steps", [f"A full report, prepared by {author}, goes to the council next month."])]
        d.ask(n, ["How many people took part in the survey?", "How many responses were received?"], "number")
        d.ask(start, ["When did the survey open?", "On what date did responses start?"], "date")
        d.ask(end, ["When did the survey close?", "What was the last day to respond?"], "date")
        d.ask(top, ["What improvement did residents ask for most?", "Which change was the top request?"], "phrase")
        d.ask(second, ["What was the second most popular request?", "Which improvement came in second place?"], "phrase")
        d.ask(pct, ["What share of respondents feel safe at night?", "What percentage said they are not afraid after dark?"], "number")
        d.ask(author, ["Who is writing the full report?", "Who prepares the document for the council?"], "name")
    if d.long:
        sections.insert(1, ("Background", _asides(d, 3, world=True)))
    out = [d.heading(title)]
    for name, text in sections:
        out.append(d.heading(name) + "\n" + " ".join(text))
    return "\n\n".join(out)


def _form(d: Doc) -> str:
    applicant, street, town, signed = d.person(), d.v("street"), d.place(), d.date()
    if d.chance(0.5):
        title = d.pick("Application for a residents' parking permit", "PARKING PERMIT APPLICATION")
        reg, color, make, zone, start = d.fresh(lambda: f"{d.rng.choice('ABCDEFGHKLMN')}{d.rng.choice('ABCDEFGHKLMN')}{d.rng.randint(10, 99)} "
                                                         f"{''.join(d.rng.choice('ABCDEFGHJKLMNPRSTVWXYZ') for _ in range(3))}"), \
            d.v("color"), d.pick("Volvo estate", "Ford hatchback", "Toyota saloon", "small Fiat", "Renault van"), d.v("room"), d.date()
        fields = [("Applicant", applicant), ("Address", f"{street}, {town}"), ("Vehicle registration", reg),
                  ("Make / model", make), ("Colour", color), ("Permit zone", zone), ("Permit to start", start)]
        d.ask(reg, ["What is the car's number plate?", "Which registration is the permit for?"], "code")
        d.ask(color, ["What colour is the vehicle?", "What colour car will display the permit?"], "color")
        d.ask(zone, ["For which zone is the permit requested?", "In what area will the car be allowed to park?"], "code")
        d.ask(start, ["From when should the permit be valid?", "When does the permit begin?"], "date")
    else:
        title = d.pick("Equipment loan form", "Library of Things - borrowing form")
        item, serial, (out_, back), deposit = d.v("object"), d.v("code"), d.dates(2), d.money(5, 80)
        fields = [("Borrower", applicant), ("Address", f"{street}, {town}"), ("Item", item), ("Serial no.", serial),
                  ("Date out", out_), ("Return by", back), ("Deposit paid", deposit)]
        d.ask(item, ["What is being borrowed?", "Which item does the form cover?"], "object")
        d.ask(serial, [f"What is the serial number of the {item}?", "Which serial is recorded?"], "code")
        d.ask(back, [f"By what date must the {item} come back?", "When is the item due back?"], "date")
        d.ask(out_, ["When was the item taken out?", "On what date did the loan start?"], "date")
        d.ask(deposit, ["How much was left as a deposit?", "What deposit did the borrower pay?"], "amount")
    d.ask(applicant, ["Who filled in the form?", "What is the name of the applicant?"], "name")
    d.ask(street, ["What is the applicant's street address?", "Where does the person filling in the form live?"], "place")
    d.ask(signed, ["When was the form signed?", "On what date was the application completed?"], "date")
    office = d.pick("", f"OFFICE USE ONLY - checked by {d.first()}, ref {d.v('code')}")
    sep = d.pick(": ", ":\t", " ..... ", " | ")
    body = "\n".join(f"{d.label(k)}{sep}{v}" for k, v in fields)
    signature = f"{d.label('Signed')}{sep}{applicant}    {d.label('Date')}{sep}{signed}"
    return "\n\n".join(p for p in (d.heading(title), body, signature, office) if p)


# (section, changelog wording, how a question names the change)
_CHANGES = (("Fixed", "crash when opening files with very long names", "the crash with long file names"),
            ("Fixed", "wrong totals in the monthly export", "the wrong export totals"),
            ("Added", "dark mode for the settings page", "a dark settings page"),
            ("Added", "import from spreadsheets", "spreadsheet import"),
            ("Changed", "default timeout raised", "a longer default timeout"),
            ("Fixed", "memory leak in the thumbnail cache", "the thumbnail cache leak"),
            ("Added", "keyboard shortcut for search", "a search shortcut key"),
            ("Removed", "the legacy sync option", "the old sync option"),
            ("Fixed", "time zones in calendar reminders", "reminders showing the wrong time zone"),
            ("Changed", "smaller installer", "a smaller installer"),
            ("Added", "export to PDF", "PDF export"),
            ("Fixed", "login loop on expired sessions", "the login loop"))
_CHANGE_ASKS = {"Fixed": ("In which version was {np} fixed?", "Which release got rid of {np}?"),
                "Added": ("Which version introduced {np}?", "In which release did {np} first appear?"),
                "Changed": ("Which version brought {np}?", "In which release did users get {np}?"),
                "Removed": ("In which version did {np} disappear?", "Which release took away {np}?")}


def _changelog(d: Doc) -> str:
    product = d.v("codename")
    major, minor = d.rng.randint(1, 9), d.rng.randint(0, 20)
    versions = [f"{major}.{minor}.{p}" for p in range(d.rng.randint(3, 4), 0, -1)] + [f"{major}.{minor}.0"]
    dates = d.dates(len(versions), "{y}-{m:02d}-{d:02d}")[::-1]
    changes = d.shuffled(_CHANGES)
    out = [d.pick(f"# Changelog - {product}", f"{product} release notes", "CHANGELOG")]
    for i, (v, day) in enumerate(zip(versions, dates)):
        block = [d.pick(f"## {v} ({day})", f"{v} - {day}", f"[{v}] {day}")]
        for _ in range(d.rng.randint(1, 3)):
            if not changes:
                break
            kind, what, np = changes.pop()
            issue, who = d.ref("#", 3), d.fresh(lambda: "@" + d.pick(*W.FIRST_NAMES).lower())
            credit = d.chance(0.4)
            block.append(f"- {kind}: {what} ({issue}{', thanks ' + who if credit else ''})")
            d.ask(v, [q.format(np=np) for q in _CHANGE_ASKS[kind]], "code")
            d.ask(issue, [f"What issue number goes with {np}?", f"Which ticket tracks {np}?"], "code")
            if credit:
                d.ask(who, [f"Who contributed the work on {np}?", f"Which contributor is thanked for {np}?"], "name")
        d.ask(day, [f"When was version {v} released?", f"On what date did {v} come out?"], "date")
        out.append("\n".join(block))
    return "\n\n".join(out)


def _classified(d: Doc) -> str:
    ads = []
    for variant in d.sample((0, 0, 0, 1, 2, 3), d.rng.randint(3, 5)):
        name, phone = d.first(), d.phone()
        if variant == 0:
            thing, color, price, town = d.v("object"), d.v("color"), d.money(5, 400, cents=False), d.place()
            ads.append(d.pick(f"FOR SALE: {color} {thing}, hardly used. {price} o.n.o. Collect from {town}. Call {name} on {phone}.",
                              f"{thing.capitalize()} ({color}), good condition, {price}. Collection {town} only - {name}, {phone}."))
            d.ask(price, [f"What is the asking price for the {thing}?", f"How much does the seller want for the {thing}?"], "amount")
            d.ask(town, [f"Where must the {thing} be picked up?", f"In which town can the {thing} be collected?"], "place")
            d.ask(name, [f"Who is selling the {thing}?", f"Whom should you ring about the {thing}?"], "name")
        elif variant == 1:
            animal, reward, street = d.v("animal"), d.money(20, 300, cents=False), d.v("street")
            ads.append(d.pick(f"LOST: tame {animal} near {street}. Reward {reward}. {name}, {phone}.",
                              f"Missing since Sunday around {street}: our {animal}. {reward} reward - ring {phone} ({name})."))
            d.ask(reward, [f"What reward is offered for the {animal}?", f"How much will the owner pay to get the {animal} back?"], "amount")
            d.ask(street, [f"Where did the {animal} go missing?", f"Near which street was the {animal} lost?"], "place")
        elif variant == 2:
            rent, rooms, town = d.money(300, 2400, cents=False), d.num(1, 5), d.place()
            ads.append(d.pick(f"TO LET: {rooms}-bedroom flat in {town}, {rent} a month, available now. {phone}.",
                              f"Flat to rent, {town}: {rooms} bedrooms, {rent} pcm. Viewings via {name}, {phone}."))
            d.ask(rent, [f"What is the monthly rent of the flat in {town}?", f"What does the {town} flat cost a month?"], "amount")
            d.ask(rooms, [f"How many bedrooms does the flat in {town} have?", f"How many bedrooms are in the {town} flat?"], "number")
        else:
            instrument, pay = d.v("instrument"), d.money(10, 60, cents=False)
            ads.append(d.pick(f"WANTED: {instrument} player for a wedding band. {pay} per hour. Call {name}, {phone}.",
                              f"Our band needs a {instrument} player for weddings - {pay} an hour. {name}: {phone}."))
            d.ask(instrument, ["Which instrument player is the band looking for?", "What musician is wanted?"], "object")
            d.ask(pay, ["How much does the band pay per hour?", "What is the hourly fee offered to the musician?"], "amount")
            d.ask(phone, ["What number should musicians call?", "Which phone number is given for the band?"], "code")
    head = d.pick("Classifieds", f"{d.place()} Gazette - small ads", "NOTICEBOARD")
    return "\n\n".join([d.heading(head)] + ads)


def _biography(d: Doc) -> str:
    who, born_day, born_year, town = d.person(), d.date("{d} {M}"), d.num(1901, 1990), d.place()
    school, job, founded, firm, spouse, children, award, award_year = f"{d.place()} {d.pick('Institute', 'Academy', 'College')}", \
        d.v("job"), d.num(1920, 2015), d.company(), d.person(), d.num(2, 6), f"the {d.place()} Medal", d.num(1930, 2020)
    lines = [who]
    if d.chance(0.5):
        lines.append("\n".join(f"{d.label(k)}: {v}" for k, v in (("Born", f"{born_day} {born_year}, {town}"),
                                                                  ("Occupation", job), ("Spouse", spouse), ("Known for", firm))))
    lines.append(d.pick(f"{who} (born {born_day} {born_year} in {town}) is a {job} best known as the founder of {firm}.",
                        f"Born in {town} in {born_year}, {who} trained as a {job} and later founded {firm}."))
    lines.append(d.pick(f"After studying at the {school}, {_surname(who)} set up {firm} in {founded} with two friends.",
                        f"{_surname(who)} went to the {school}; in {founded} the first workshop of {firm} opened in a rented garage."))
    lines.append(d.pick(f"In {award_year} {_surname(who)} received {award}.", f"{award[0].upper()}{award[1:]} followed in {award_year}."))
    lines.append(d.pick(f"{_surname(who)} is married to {spouse}; they have {children} children.",
                        f"With {spouse}, whom {_surname(who)} married after the war, there are {children} children."))
    d.ask(town, [f"Which town does {who} come from originally?", f"What is {_surname(who)}'s birthplace?"], "place")
    d.ask(born_year, [f"What is {_surname(who)}'s year of birth?", f"In what year was {who} born?"], "number")
    d.ask(job, [f"What is {_surname(who)}'s profession?", f"What did {who} train as?"], "phrase")
    d.ask(firm, [f"Which company did {_surname(who)} establish?", f"What firm was started by {who}?"], "name")
    d.ask(founded, [f"When did {firm} begin?", f"In which year did {firm} get going?"], "number")
    d.ask(school, [f"Where was {_surname(who)} educated?", f"Which school did {who} attend?"], "place")
    d.ask(spouse, [f"Whom did {_surname(who)} wed?", f"Who is {_surname(who)}'s spouse?"], "name")
    d.ask(children, [f"How many sons and daughters does {_surname(who)} have?",
                     f"How large is {_surname(who)}'s family, in children?"], "number")
    d.ask(award_year, [f"In which year did {_surname(who)} get {award}?", "When was the medal awarded?"], "number")
    if d.long:
        lines.append(" ".join(_asides(d, 3, world=True)))
    return "\n\n".join(lines)


# =============================================================================================
# Everyday kinds (`EVERYDAY_KINDS`, outside `KINDS`): house notes, site information sheets, field
# diaries, club bulletins and maintenance reports. Their answers are mostly ordinary words ("airing
# cupboard", "crampons", "sister", "a fortnight", "half past eight", "twice a day"), and every
# document states several facts of each asked type (three things in three places, three durations),
# so a question is answered by matching its content, not by picking the one value of the right type:
# the adapters answered such words far worse than figures, most often with another fact's value.
# =============================================================================================

_HOME_SPOT_NAMES = tuple(W.HOME_SPOTS)
_SHORT_SPANS = tuple(s for s in W.DURATIONS if "minute" in s or "hour" in s and s.split()[0] in
                     ("an", "half", "a", "two", "three"))
_LONG_SPANS = tuple(s for s in W.DURATIONS if s not in _SHORT_SPANS)
# kit that takes no article: "bring sun cream", not "bring a sun cream"
_MASS_GEAR = frozenset({"sun cream", "insect repellent", "bunting", "tarpaulin"})


def _some(item: str) -> str:
    """`item` as the object of "bring" or "get": bare for plurals and mass nouns, else with "a"/"an"."""
    if item in _MASS_GEAR or (item.endswith("s") and not item.endswith("ss")):
        return item
    return _an(f"a {item}")


def _bare(phrase: str) -> str:
    """The answer span of a phrase written with its article ("a cracked pipe" -> "cracked pipe")."""
    for article in ("a ", "an "):
        if phrase.startswith(article):
            return phrase[len(article):]
    return phrase


def _layout(d: Doc, blocks: Sequence[tuple[str, list[str]]], bullets: bool | None = None) -> list[str]:
    """Titled blocks as headed lists or as plain paragraphs, the two ways people set out notes; a
    block that is one table keeps its heading either way."""
    listed = d.chance(0.5) if bullets is None else bullets
    out = []
    for title, items in blocks:
        if len(items) == 1 and "\n" in items[0]:
            out.append(d.heading(title) + "\n" + items[0])
        elif listed:
            out.append(d.heading(title) + "\n" + _bullets(d, items))
        else:
            out.append(" ".join(items))
    return out


# -- house note: where things are kept, who does what, pets, borrowed things, timings

def _house_where(d: Doc, reader: str) -> tuple[str, list[str]]:
    items = []
    for thing in d.words(W.HOUSEHOLD_THINGS, d.rng.randint(4, 5)):
        spot = d.word(_HOME_SPOT_NAMES)
        at = f"{W.HOME_SPOTS.get(spot, 'in')} the {spot}"
        items.append(d.pick(f"You'll find the {thing} {at}.", f"We keep the {thing} {at}.",
                            f"If you need the {thing}, look {at}.", f"The {thing} should be {at}.",
                            f"{at[0].upper()}{at[1:]}: the {thing}."))
        d.ask(spot, [f"Where would {reader} come across the {thing}?", f"Where is the {thing} stored?",
                     f"In what part of the house should one search for the {thing}?"], "place")
        d.ask(thing, [f"What is stored {at}?", f"Which household item has its place {at}?"], "object")
    return d.pick("Where things are", "Finding things", "Where to look"), items


def _house_chores(d: Doc, mates: Sequence[str]) -> tuple[str, list[str]]:
    items = []
    for name, chore in zip(mates, d.words(W.CHORES, len(mates), open_=False)):
        items.append(d.pick(f"{name} is on {chore} this week.", f"{name} is down for {chore}.",
                            f"{name}: {chore}.", f"{name} has said yes to {chore}."))
        d.ask(chore, [f"Which job has {name} got this week?", f"What has {name} been given to do?",
                      f"What is {name}'s chore?"], "phrase")
    name = mates[0]
    d.ask(name, ["Who is the first person on the rota?", "Whose name comes first on the rota?"], "name")
    return d.pick("Rota", "Who does what", "Jobs this week"), items


def _house_pets(d: Doc) -> tuple[str, list[str]]:
    pets = d.words(W.PETS, 3, open_=False)
    items = []
    for pet, how_often in zip(pets, d.words(W.FREQUENCIES, len(pets), open_=False)):
        items.append(d.pick(f"The {pet} gets fed {how_often}.", f"Please feed the {pet} {how_often}.",
                            f"The {pet} needs food {how_often}."))
        d.ask(how_often, [f"How often does the {pet} eat?", f"How frequently should the {pet} get its dinner?",
                          f"At what intervals is the {pet} fed?"], "phrase")
    kept_out = d.pick(*pets)
    items.append(d.pick(f"The {kept_out} is not allowed upstairs.", f"Keep the {kept_out} out of the bedrooms.",
                        f"Don't let the {kept_out} on the beds."))
    d.ask(kept_out, ["Which animal must stay out of the bedrooms?", "Which pet is barred from upstairs?"], "object")
    return d.pick("Animals", "Pets", "Feeding"), items


def _house_lent(d: Doc) -> tuple[str, list[str]]:
    items = []
    for rel, thing in zip(d.words(W.RELATIONS, 3, open_=False), d.words(W.HOUSEHOLD_THINGS, 3)):
        items.append(d.pick(f"The {thing} belongs to my {rel}, so please look after it.",
                            f"My {rel} lent us the {thing}.", f"We borrowed the {thing} from my {rel}."))
        d.ask(rel, [f"Who does the {thing} belong to?", f"From whom was the {thing} borrowed?",
                    f"Whose is the {thing}?"], "phrase")
        d.ask(thing, [f"What has the writer's {rel} lent?", f"Which borrowed item belongs to the writer's {rel}?"], "object")
    return d.pick("Borrowed things", "Not ours", "Please take care of"), items


# (statement, questions) about a stretch of time; the first needs a long one, the rest short ones
_HOUSE_SPANS = (
    (("We're away for {x}, back before you know it.", "We'll be gone for {x} in all."),
     ("How long will the household be away?", "For how long are the owners gone?")),
    (("The immersion heater takes {x} to heat the water.", "Give the hot water {x} to warm up."),
     ("How long does the water take to heat?", "How long must one wait for hot water?")),
    (("A wash on the machine takes about {x}.", "The washing machine runs for {x}."),
     ("How long does a load of washing take?", "How long is a washing-machine cycle?")),
    (("The oven needs {x} to get hot.", "Allow {x} for the oven to warm up."),
     ("How long does the oven take to heat up?", "How much time should the oven be given before cooking?")),
    (("The heating comes on for {x} each evening.", "In the evenings the heating runs for {x}."),
     ("For how long does the heating run at night?", "How long is the heating on in the evening?")),
)
_HOUSE_CLOCKS = (
    (("The post comes at about {x}.", "Post usually arrives around {x}."),
     ("Around what time are letters delivered?", "When does the mail usually land on the mat?")),
    (("Bins have to be out by {x} on collection day.", "The lorry comes early, so put bins out by {x}."),
     ("By when do the bins need to be on the pavement?", "What is the latest the rubbish can go outside?")),
    (("Please keep the noise down after {x}.", "Quiet hours start at {x}."),
     ("From what time should the house be silent?", "After what hour must everyone stop making a racket?")),
    (("The milk is delivered at {x}.", "Milk turns up on the step at {x}."),
     ("When do the bottles from the dairy turn up?", "At what hour is milk dropped off?")),
    (("The boiler switches off at {x}.", "At {x} the boiler goes off by itself."),
     ("When does the hot water and heating shut down automatically?", "At what time does the boiler stop for the night?")),
)


def _timed_facts(d: Doc, facts, values: Sequence[str], type_: str) -> list[str]:
    """One statement per (statement, questions) fact with its value, each asked about."""
    items = []
    for (says, asks), x in zip(facts, values):
        items.append(d.pick(*says).format(x=x))
        d.ask(x, list(asks), type_)
    return items


def _house_times(d: Doc) -> tuple[str, list[str]]:
    if d.chance(0.5):
        facts = [_HOUSE_SPANS[0]] + d.sample(_HOUSE_SPANS[1:], 2)
        values = [d.word(_LONG_SPANS, open_=False)] + d.words(_SHORT_SPANS, 2, open_=False)
        return d.pick("How long things take", "Timings"), _timed_facts(d, facts, values, "time")
    facts = d.sample(_HOUSE_CLOCKS, 3)
    return d.pick("Times", "Daily routine"), _timed_facts(d, facts, d.words(W.CLOCK_WORDS, 3, open_=False), "time")


_HOME_ASIDES = ("Help yourself to anything in the fridge.", "The front door sticks in wet weather, so give it a shove.",
                "Don't worry about the noises from the pipes, they're normal.", "The upstairs toilet needs a firm flush.",
                "Wifi details are on the back of the router.", "Plants on the landing are fake, no need to water them.",
                "The back gate doesn't lock, so just wedge it shut.", "Recycling collection is fortnightly; the calendar is on the noticeboard.",
                "If the smoke alarm goes off while you're cooking, open the kitchen window.",
                "The neighbours on the left are lovely and have a key if you get locked out.")


def _house_note(d: Doc) -> str:
    writer, reader = d.first(), d.first()
    mates = [d.first() for _ in range(3)]
    extras = d.sample([lambda: _house_chores(d, mates), lambda: _house_pets(d), lambda: _house_lent(d),
                       lambda: _house_times(d)], 4 if d.long else 3)
    blocks = [_house_where(d, reader)] + [make() for make in extras]
    body = _layout(d, blocks)
    if d.chance(0.7):
        body.insert(d.rng.randint(1, len(body)), " ".join(d.sample(_HOME_ASIDES, 2)))
    hello = d.pick(f"Hi {reader},", f"{reader} -", f"Dear {reader},", "Hello!")
    away, leave = d.place(), d.date()
    intro = d.pick(f"We're off to {away} on {leave}, so here are a few notes to help you find your way around.",
                   f"Thanks so much for keeping an eye on things while we're in {away}. We leave on {leave}.",
                   f"Everything you need to know while we're away in {away} (from {leave}), I hope.",
                   f"Welcome! Now that you've moved in, here's how the house works. {mates[1]} is away in {away} "
                   f"until {leave}, so you'll meet the others first.")
    bye = d.pick(f"Thanks!\n{writer}", f"See you soon, {writer}", f"{writer} x", f"Any problems, text me. {writer}")
    head = d.pick("", d.heading(d.pick("House notes", "For the house-sitter", "Welcome to the house")))
    return _an("\n\n".join(p for p in [head, hello, intro, *body, bye] if p))


# -- site information sheet: entrances, parking, what is handed out, wet-weather plans, timings

_VEHICLES = ("cars", "coaches", "minibuses", "bicycles", "motorbikes", "vans", "horseboxes", "camper vans",
             "trailers", "mobility scooters")
_ACTIVITIES = ("the talks", "the craft tables", "the dog show", "the cream teas", "the band", "the children's games",
               "the plant stall", "the bake sale", "the judging", "the storytelling", "the book stall", "the quiz",
               "the film showing", "the dance display", "the barbecue")
# (event as stated, questions)
_SITE_EVENTS = ((("The gates open at {x}.", "Gates open at {x}."), ("When can the public get in?", "From what hour are visitors let onto the site?")),
                (("The raffle is drawn at {x}.", "Raffle draw: {x}."), ("At what hour will the winning tickets be picked?", "When do people find out who won the prize draw?")),
                (("The tug of war starts at {x}.", "Tug of war at {x}."), ("At what hour does the tug of war get under way?", "When do the teams pull against each other in the rope contest?")),
                (("Prizes are given out at {x}.", "Prize-giving is at {x}."), ("When are the awards presented?", "At what hour do winners collect their awards?")),
                (("Pack-down starts at {x}.", "We start clearing up at {x}."), ("When does dismantling everything get going?", "At what hour do helpers begin taking things down?")),
                (("The briefing for helpers is at {x}.", "Helpers' briefing: {x}."), ("When do volunteers get their instructions?", "At what hour should volunteers gather to be told the plan?")),
                (("Last entry is at {x}.", "Nobody is let in after {x}."), ("What is the latest time to get in?", "After what hour is the site closed to newcomers?")))


_SITE_NOTES = ("Toilets are signposted from the main path.", "Dogs on leads are welcome everywhere except the food area.",
               "Please don't leave valuables on show in vehicles.", "Smoking is only allowed in the marked area.",
               "There is a water point by the information tent.", "Lost children should be taken to the information tent.",
               "Wear sensible shoes: the ground is uneven in places.", "The site has no mobile signal in the lower part.",
               "Drinks are free for helpers all day.", "Please take your litter home with you.")


def _site_entry(d: Doc, roles: Sequence[str]) -> tuple[str, list[str]]:
    items = []
    for role, way in zip(roles, d.words(W.ENTRANCES, len(roles))):
        items.append(d.pick(f"Entry for {role} is by the {way}.", f"If you're one of the {role}, please use the {way}.",
                            f"We ask {role} to come in through the {way}."))
        d.ask(way, [f"Which way in should the {role} use?", f"Where do the {role} enter the site?",
                    f"Through which entrance do the {role} arrive?"], "place")
        d.ask(role, [f"Who is meant to use the {way}?", f"Which group comes in by the {way}?"], "phrase")
    return d.pick("Getting in", "Arrival", "Entrances"), items


def _site_parking(d: Doc) -> tuple[str, list[str]]:
    items = []
    for vehicle, spot in zip(d.sample(_VEHICLES, 3), d.words(W.OUTDOOR_PREMISES, 3)):
        items.append(d.pick(f"Parking for {vehicle} is by the {spot}.", f"Space for {vehicle}: next to the {spot}.",
                            f"There is room for {vehicle} beside the {spot}."))
        d.ask(spot, [f"Where should {vehicle} be left?", f"Where do {vehicle} go on arrival?",
                     f"Near what should visitors leave their {vehicle}?"], "place")
    return d.pick("Parking", "Vehicles"), items


def _site_kit(d: Doc, roles: Sequence[str]) -> tuple[str, list[str]]:
    items = []
    for role, kit in zip(roles, d.words(W.GEAR, len(roles))):
        items.append(d.pick(f"The {role} will each be given {_some(kit)}.", f"At the desk we hand {_some(kit)} to each of the {role}.",
                            f"There is {_some(kit)} waiting at the desk for each of the {role}."))
        d.ask(kit, [f"What do the {role} receive?", f"What is issued to the {role}?",
                    f"What kit do the {role} get on arrival?"], "object")
        d.ask(role, [f"Who gets {_some(kit)} at the desk?"], "phrase")
    return d.pick("What you'll be given", "Kit", "At the welcome desk"), items


def _site_rain(d: Doc) -> tuple[str, list[str]]:
    items = []
    for act, spot in zip(d.sample(_ACTIVITIES, 3), d.words(W.INDOOR_PREMISES, 3)):
        items.append(d.pick(f"If it rains, {act} will move to the {spot}.", f"In bad weather {act} go to the {spot}.",
                            f"Should it pour, we will hold {act} in the {spot}."))
        d.ask(spot, [f"Where will {act} take place if the weather turns?", f"Where will {act} be in a downpour?",
                     f"What is the wet-weather venue for {act}?"], "place")
    return d.pick("If it rains", "Wet-weather plan", "Rain plan"), items


def _site_times(d: Doc) -> tuple[str, list[str]]:
    facts = d.sample(_SITE_EVENTS, 3)
    return d.pick("Timings", "On the day", "Times to remember"), \
        _timed_facts(d, facts, d.words(W.CLOCK_WORDS, 3, open_=False), "time")


def _site_table(d: Doc, roles: Sequence[str]) -> tuple[str, list[str]]:
    """Entrances and kit per group as one table, as a sheet for helpers often has it."""
    rows = []
    for role, way, kit in zip(roles, d.words(W.ENTRANCES, len(roles)), d.words(W.GEAR, len(roles))):
        rows.append([role, way, kit])
        d.ask(way, [f"Which way in should the {role} use?", f"Through which entrance do the {role} arrive?"], "place")
        d.ask(kit, [f"What do the {role} receive?", f"What is handed out to the {role}?"], "object")
        d.ask(role, [f"Which group comes in by the {way}?", f"Who is issued with {_some(kit)}?"], "phrase")
    return d.pick("Who goes where", "Groups"), [_grid(d, ["Group", "Way in", "You get"], rows)]


def _site_info(d: Doc) -> str:
    event = f"{d.place()} {d.pick('Summer Fete', 'Open Day', 'Country Show', 'Fun Run', 'Craft Fair', 'Dog Show', 'Family Fun Day', 'Heritage Day', 'Beer Festival')}"
    roles = d.words(W.EVENT_ROLES, 6, open_=False)
    if d.chance(0.35):  # entrances and kit as one table
        first, makers = _site_table(d, roles[:3]), [_site_parking, _site_rain, _site_times]
    else:
        first, makers = _site_entry(d, roles[:3]), [_site_parking, _site_rain, _site_times,
                                                    lambda dd: _site_kit(dd, roles[3:])]
    blocks = [first] + [make(d) for make in d.sample(makers, len(makers) if d.long else 3)]
    body = _layout(d, [first] + d.shuffled(blocks[1:]))
    body.insert(d.rng.randint(1, len(body)), d.heading(d.pick("General", "Good to know", "Please note")) + "\n"
                + " ".join(d.sample(_SITE_NOTES, d.rng.randint(2, 3))))
    contact, phone = d.person(), d.phone()
    d.ask(contact, ["Who should be called on the day?", "Who is the contact on the day?"], "name")
    intro = d.pick(f"Thank you for helping at the {event}. Please read this before the day.",
                   f"Everything helpers and visitors need to know about the {event}.", f"Welcome to the {event}!")
    end = d.pick(f"On the day, ring {contact} on {phone} with any problems.", f"Questions: {contact}, {phone}.",
                 f"Any trouble, find {contact} (mobile {phone}).")
    return _an("\n\n".join([d.heading(d.pick("Site information", f"{event}: information sheet", "Helper and visitor information")),
                            intro, *body, end]))


# -- field diary: what was seen where, how many, in what weather, for how long

def _diary_entry(d: Doc, day: str) -> str:
    spot, bird, count = d.word(W.HABITATS), d.word(W.BIRDS), d.word(W.NUMBER_WORDS, open_=False)
    weather, span = d.word(W.WEATHER, open_=False), d.word(_SHORT_SPANS, open_=False)
    birds = _plural(bird)
    head = d.pick(f"{day} - {weather}.", f"{day}. Weather: {weather}.", f"{day} ({weather})")
    seen = d.pick(f"Spent {span} at the {spot} and counted {count} {birds}.",
                  f"Sat by the {spot} for {span}; {count} {birds} came through.",
                  f"At the {spot} for {span}. Best sighting: {count} {birds}.",
                  f"Walked to the {spot} ({span} there) and saw {count} {birds}.")
    d.ask(bird, [f"Which bird did the writer count at the {spot}?", f"What turned up at the {spot}?",
                 f"What birds were seen by the {spot}?"], "object")
    d.ask(spot, [f"At which place did the writer come across the {birds}?", f"Where did the {birds} show up?"], "place")
    d.ask(count, [f"What number of {birds} did the writer record?", f"How many {birds} were noted?"], "number")
    d.ask(weather, [f"What was the weather like on the day of the {birds}?",
                    f"What weather did the writer note on the day they went to the {spot}?"], "phrase")
    d.ask(span, [f"How long did the writer spend at the {spot}?", f"For how long did the writer stay near the {spot}?"], "time")
    if d.chance(0.5):
        plant, where = d.word(W.WILDFLOWERS), d.word(W.HABITATS)
        extra = d.pick(f"Noticed {plant} along the {where}.", f"There were {plant} out by the {where}.")
        d.ask(plant, [f"What was growing near the {where}?", f"Which plant did the writer spot close to the {where}?"], "object")
    else:
        animal, where = d.word(W.WILDLIFE), d.word(W.HABITATS)
        extra = d.pick(f"A {animal} crossed the path near the {where}.", f"On the way back, a {animal} by the {where}.")
        d.ask(animal, [f"Which creature did the writer meet near the {where}?", f"What animal turned up close to the {where}?"], "object")
    aside = d.pick(*_DIARY_ASIDES) if d.chance(0.7) else ""
    return " ".join(p for p in (head, seen, extra, aside) if p)


_DIARY_ASIDES = ("Hands too cold to write much.", "Flask of tea at the top, very welcome.", "Nobody else about.",
                 "Path badly churned up by the cattle.", "Forgot the camera, of course.", "Lots of song but little to see.",
                 "Met a dog walker who said it had been quiet all week.", "Back before dark.",
                 "Light fading fast by the end.", "Sketched what I could in the margin.")


def _field_diary(d: Doc) -> str:
    days = d.dates(d.rng.randint(4, 6 if d.long else 5), d.pick("{d} {M}", "{wd} {d} {M}", "{M} {d}"))
    entries = [_diary_entry(d, day) for day in days]
    place = d.place()
    title = d.pick(f"Field notes - {place}", f"Nature diary: {place}", "Notebook", f"Walks around {place}")
    intro = d.pick(f"Notes from my walks around {place}, mostly early mornings.",
                   f"Kept for the {place} recording group; counts are my own.", "Rough notes, to be typed up properly later.")
    end = d.pick("", "Must bring the better binoculars next time.", "Quiet week overall.", f"Sent the counts to {d.person()}.")
    return _an("\n\n".join(p for p in [d.heading(title), intro, *entries, end] if p))


# -- club bulletin: who brings what, where each session meets, how long things last, helpers, posts

_CLUBS = ("Ramblers", "Community Choir", "Allotment Society", "Running Club", "Wildlife Group", "Cricket Club",
          "Repair Café", "Tuesday Walkers", "Gardening Club", "Camera Club", "Swimming Club", "Bell Ringers")
_SESSIONS = ("the Tuesday evening session", "the Saturday work party", "the Sunday walk", "the beginners' group",
             "the committee", "the junior section", "the Thursday practice", "the monthly social",
             "the early-morning group", "the litter pick")
_PARTS = ("the warm-up", "the main session", "the tea break", "the walk itself", "the annual meeting", "the cool-down",
          "the talk", "the practice", "the tour", "the safety briefing")
_JOBS = ("the car park", "the tea tent", "setting up", "clearing away", "the raffle", "the gate", "the plant sale",
         "the barbecue", "the cake stall", "washing up")


_CLUB_NOTES = ("Thank you to everyone who came out last month in that weather.", "Subs are now due for the year.",
               "The noticeboard has been moved to the corridor by the kitchen.", "New members are always welcome, so bring a friend.",
               "We still have some spare copies of the club handbook.", "The photos from the summer outing are up on the website.",
               "Please sign the attendance book each time you come.", "A reminder that we can't store personal kit in the shed.")


def _club_rota(d: Doc) -> tuple[str, list[str]]:
    days = d.sample(W.WEEKDAYS, d.rng.randint(3, 4))
    rows = []
    for day, food in zip(days, d.words(W.FOODS, len(days))):
        name = d.first()
        rows.append((day, name, food))
        d.ask(food, [f"What is {name} bringing?", f"What will {name} provide?", f"What is on the tea table on {day}?"], "object")
    day, name, food = rows[0]
    d.ask(name, [f"Who has the refreshments on {day}?", f"Whose turn is it to bring food on {day}?"], "name")
    if d.chance(0.5):
        return "Refreshments rota", [_grid(d, ["Day", "Who", "Bringing"], [list(r) for r in rows])]
    return d.pick("Refreshments rota", "Teas"), [d.pick(f"{day}: {name} brings {food}.", f"{day} - {name}, with {food}.")
                                                 for day, name, food in rows]


def _club_places(d: Doc) -> tuple[str, list[str]]:
    items = []
    for session, spot in zip(d.sample(_SESSIONS, 3), d.words(W.PREMISES, 3)):
        items.append(d.pick(f"From now on {session} meets at the {spot}.", f"For {session}, come to the {spot}.",
                            f"Please note {session} gathers by the {spot}."))
        d.ask(spot, [f"Where should people go for {session}?", f"What is the meeting point for {session}?",
                     f"Where do members turn up for {session}?"], "place")
    return d.pick("Meeting places", "Where we meet"), items


def _club_spans(d: Doc) -> tuple[str, list[str]]:
    items = []
    for part, span in zip(d.sample(_PARTS, 3), d.words(_SHORT_SPANS, 3, open_=False)):
        items.append(d.pick(f"Allow {span} for {part}.", f"We've set aside {span} for {part}.",
                            f"Expect {part} to take {span}."))
        d.ask(span, [f"How much time does {part} get?", f"How much time is planned for {part}?", f"How long will {part} go on?"], "time")
    return d.pick("Timings", "How long things take"), items


def _club_helpers(d: Doc) -> tuple[str, list[str]]:
    items = []
    for job, n in zip(d.sample(_JOBS, 3), d.words(W.NUMBER_WORDS, 3, open_=False)):
        items.append(d.pick(f"We need {n} people for {job}.", f"For {job} we are looking for {n} volunteers.",
                            f"Could {n} of you help with {job}?"))
        d.ask(n, [f"How many helpers are wanted for {job}?", f"How many members are asked to give a hand with {job}?"], "number")
    return d.pick("Helpers wanted", "Can you help?"), items


def _club_posts(d: Doc) -> tuple[str, list[str]]:
    items = []
    for role in d.words(W.CLUB_ROLES, 3, open_=False):
        name = d.person()
        items.append(d.pick(f"{name} takes over as {role}.", f"{name} has kindly agreed to be our {role}.",
                            f"Welcome to {name}, our new {role}."))
        d.ask(role, [f"What post has {_first_name(name)} taken on?", f"Which role is {name} taking over?",
                     f"What will {_first_name(name)} be doing for the club?"], "phrase")
    d.ask(name, [f"Who has become the club's {role}?"], "name")
    return d.pick("New faces", "Committee news"), items


def _club_bulletin(d: Doc) -> str:
    club = f"{d.place()} {d.pick(*_CLUBS)}"
    makers = d.sample([_club_rota, _club_places, _club_spans, _club_helpers, _club_posts], 5 if d.long else 4)
    body = _layout(d, [make(d) for make in makers])
    body.insert(d.rng.randint(0, len(body)), " ".join(d.sample(_CLUB_NOTES, d.rng.randint(2, 3))))
    hello = d.pick("Hello everyone, ", "Hi all! ", "Dear members, ", "") + d.pick(
        f"Here is the latest from the {club}.", "A few bits of news before the next session.", "Lots going on, so please read to the end.")
    end = d.pick(f"See you soon - {d.first()}", "Thanks, the committee", f"Questions to {d.person()}.", "")
    title = d.pick(f"{club} - news", f"{club} bulletin", "Club news", f"{club}: this month")
    return _an("\n\n".join(p for p in [d.heading(title), hello, *body, end] if p))


# -- maintenance report: what went wrong where, why, what fixed it, how long, who noticed

# (what a question calls it, how the report introduces it, causes, what was used to fix it)
_FAULTS = (
    ("leak", "a leak", ("a cracked pipe", "a loose joint", "a slipped roof tile", "a blocked gutter", "a perished washer",
                        "a split hose", "an overflowing cistern"),
     ("a pipe clamp", "plumber's tape", "a new washer", "a tarpaulin", "a row of buckets", "silicone sealant", "a jubilee clip")),
    ("power cut", "a power cut", ("a tripped breaker", "a faulty kettle", "water in a socket", "an overloaded extension lead",
                                  "a chewed cable", "a blown fuse"),
     ("a new fuse", "a replacement breaker", "insulation tape", "a borrowed generator", "a new junction box", "cable ties")),
    ("flooding", "flooding", ("a blocked drain", "a burst water main", "a cloudburst", "an overflowing gully", "leaves in the downpipe"),
     ("sandbags", "a wet vac", "drain rods", "a submersible pump", "mops and squeegees", "old towels")),
    ("broken window", "a broken window", ("a football", "a stray golf ball", "a gust of wind", "a pigeon", "a thrown stone"),
     ("hardboard", "a plywood sheet", "gaffer tape", "window film", "cardboard and tape")),
    ("jammed door", "a jammed door", ("a swollen frame", "a bent hinge", "grit in the runner", "a seized lock", "a dropped latch"),
     ("a plane", "a can of oil", "graphite powder", "a new hinge", "a crowbar")),
    ("false fire alarm", "a false fire alarm", ("burnt toast", "steam from the showers", "dust from sanding", "candle smoke",
                                                "a spider in the detector"),
     ("a new detector head", "a vacuum nozzle", "a dust cover", "a long pole", "a stepladder")),
    ("heating failure", "a heating failure", ("an airlock", "a faulty thermostat", "low boiler pressure", "a stuck valve",
                                              "a frozen condensate pipe"),
     ("a radiator key", "fan heaters", "a new thermostat", "a filling loop", "a kettle of warm water", "a hot-air gun")),
    ("bad smell", "a bad smell", ("a dead mouse", "a dry drain trap", "a blocked sink", "rotting food in a locker", "a damp carpet"),
     ("bleach", "bicarbonate of soda", "drain unblocker", "disinfectant", "rubber gloves")),
    ("fallen branch", "a fallen branch", ("high winds", "a rotten limb", "heavy snow", "the weight of ivy"),
     ("a chainsaw", "loppers", "hazard tape", "traffic cones", "a length of rope", "a bow saw")),
    ("lift breakdown", "a lift breakdown", ("a door sensor fault", "a power surge", "a worn cable", "a stuck button"),
     ("a replacement sensor", "a winding handle", "a new control board", "a reset key")),
    ("icy path", "an icy path", ("a frozen puddle", "a leaking downpipe", "moss", "overnight frost", "a dripping overflow"),
     ("grit", "rock salt", "a stiff broom", "builder's sand", "non-slip matting")),
    ("blocked toilet", "a blocked toilet", ("paper towels", "baby wipes", "a toy car", "tree roots", "a wad of newspaper"),
     ("a plunger", "a toilet auger", "a bucket of hot water", "a drain snake")),
    ("damp patch", "a damp patch", ("a leaking shower tray", "condensation", "a blocked airbrick", "cracked render", "a missing slate"),
     ("mould spray", "stain block", "an extractor fan", "a dehumidifier", "a tube of sealant")),
    ("banging pipes", "banging pipes", ("water hammer", "a loose pipe bracket", "an airlock in the tank"),
     ("pipe brackets", "foam lagging", "a pressure valve", "rubber clips")),
    ("wasps' nest", "a wasps' nest", ("a gap under the eaves", "an open vent", "a hollow fence post", "a broken air brick"),
     ("wasp spray", "expanding foam", "a bee suit", "a sealed bag")),
    ("mouse problem", "mice", ("a hole behind the skirting", "crumbs under the lockers", "an open bin", "a gap round the pipes"),
     ("traps", "steel wool", "filler", "sealed food boxes")),
)


_OUTDOOR_FAULTS = frozenset({"fallen branch", "icy path", "wasps' nest"})


def _fresh_phrase(d: Doc, options: Sequence[str]) -> str:
    """One of `options` (written with their article) whose answer span is fresh in the document."""
    bare = d.fresh(lambda: _bare(d.pick(*options)))
    return next(o for o in options if _bare(o) == bare)


def _fault(d: Doc, fault) -> dict[str, str]:
    """One fault's facts, each asked about by the fault's name (the only thing that tells faults apart)."""
    name, intro, causes, fixes = fault
    outdoor = name in _OUTDOOR_FAULTS
    where = d.word(W.OUTDOOR_PREMISES if outdoor else W.INDOOR_PREMISES)
    f = {"name": name, "intro": intro, "where": where, "at": f"{'by' if outdoor else 'in'} the {where}",
         "cause": _fresh_phrase(d, causes), "fix": _fresh_phrase(d, fixes), "span": d.word(W.DURATIONS, open_=False),
         "who": d.word(W.STAFF_ROLES, open_=False)}
    d.ask(_bare(f["cause"]), [f"What caused the {name}?", f"What was behind the {name}?",
                              f"What turned out to be the reason for the {name}?"], "phrase")
    d.ask(f["where"], [f"Where did the {name} happen?", f"In which part of the site was the {name}?"], "place")
    d.ask(_bare(f["fix"]), [f"What was used to deal with the {name}?", f"What did the repair of the {name} need?"], "object")
    d.ask(f["span"], [f"How long did the {name} go on?", f"For how long was the {name} a problem?"], "time")
    d.ask(f["who"], [f"Who first spotted the {name}?", f"Who raised the alarm about the {name}?"], "phrase")
    return f


_REPORT_NOTES = ("No injuries this week.", "Contractors have been told about all of the above.",
                 "Costs will go to the finance committee at the next meeting.", "The accident book has been updated.",
                 "Please report anything else you notice to the office.", "Photos are in the shared folder.",
                 "A proper repair is booked for after the holidays.", "Thanks to everyone who helped out at short notice.")
# what happened after a fault, said in passing
_FOLLOW_UPS = ("A permanent repair is still to be booked.", "It has been fine since.", "We will keep an eye on it.",
               "The area was taped off in the meantime.", "A contractor is coming back to check.",
               "Users were warned by e-mail.", "Signs went up straight away.")


def _fault_text(d: Doc, f: dict[str, str], i: int) -> str:
    style = d.rng.randrange(2)
    if style == 0:
        return d.pick(f"{i}. The {f['who']} reported {f['intro']} {f['at']}. The cause was {f['cause']}; "
                      f"we sorted it with {f['fix']}. It lasted {f['span']} in all.",
                      f"{i}. {f['intro'][0].upper()}{f['intro'][1:]} {f['at']}, first noticed by the {f['who']}. "
                      f"It was down to {f['cause']} and was dealt with using {f['fix']} after {f['span']}.") \
            + " " + d.pick(*_FOLLOW_UPS)
    fields = (("Issue", f["intro"]), ("Location", f["where"]), ("Reported by", f"the {f['who']}"),
              ("Cause", f["cause"]), ("Fixed with", f["fix"]), ("Duration", f["span"]))
    return f"{i}. " + "\n".join(f"{d.label(k)}: {v}" for k, v in fields)


def _incident_report(d: Doc) -> str:
    table = d.chance(0.4)  # a table says less around each fault, so it lists more of them
    faults = [_fault(d, fault) for fault in d.sample(_FAULTS, 4 if table else d.rng.randint(3, 5 if d.long else 4))]
    site, author, day = d.pick(f"{d.place()} Primary School", f"{d.place()} Community Centre", f"{d.place()} Leisure Centre",
                               f"St {d.pick(*W.FIRST_NAMES)}'s Church Hall", f"{d.company()} depot"), d.person(), d.date()
    d.ask(author, ["Who wrote the report?", "Who prepared this report?"], "name")
    head = [d.heading(d.pick("Maintenance report", "Incident log", f"Site issues - {site}")),
            "\n".join(f"{d.label(k)}: {v}" for k, v in (("Site", site), ("Week ending", day), ("Prepared by", author)))]
    if table:
        rows = [[_bare(f["intro"]), f["where"], _bare(f["cause"]), _bare(f["fix"]), f["span"], f["who"]] for f in faults]
        body = [_grid(d, ["Issue", "Where", "Cause", "Fix", "How long", "Reported by"], rows),
                d.heading("Notes") + "\n" + _bullets(d, [f"{f['name'][0].upper()}{f['name'][1:]}: {then}"
                                                         for f, then in zip(faults, d.sample(_FOLLOW_UPS, len(faults)))])]
    else:
        body = [_fault_text(d, f, i) for i, f in enumerate(faults, 1)]
    end = " ".join(d.sample(_REPORT_NOTES, 2))
    return _an("\n\n".join(p for p in [*head, *body, end] if p))


# =============================================================================================
# Public API
# =============================================================================================

# kind name -> (builder, how a question may refer to the document)
_KINDS: dict[str, tuple[Callable[[Doc], str], tuple[str, ...]]] = {
    "email": (_email, ("e-mail", "message", "email")),
    "minutes": (_minutes, ("minutes", "meeting notes")),
    "table": (_tabular, ("table", "list")),
    "list": (_listing, ("list",)),
    "log": (_log, ("log", "log excerpt")),
    "chat": (_chat, ("chat", "conversation")),
    "story": (_story, ("story", "text")),
    "news": (_news, ("article", "news item")),
    "blog": (_blog, ("blog post", "post")),
    "spec_sheet": (_spec, ("spec sheet", "product sheet", "data sheet")),
    "itinerary": (_itinerary, ("itinerary", "schedule", "programme")),
    "invoice": (_invoice, ("invoice", "bill")),
    "receipt": (_receipt, ("receipt",)),
    "faq": (_faq, ("FAQ", "help page")),
    "notice": (_notice, ("notice", "poster", "announcement")),
    "recipe": (_recipe, ("recipe",)),
    "letter": (_letter, ("letter",)),
    "report": (_report, ("report",)),
    "form": (_form, ("form",)),
    "changelog": (_changelog, ("changelog", "release notes")),
    "classified": (_classified, ("ads", "small ads", "listings")),
    "biography": (_biography, ("biography", "article")),
}

KINDS: tuple[str, ...] = tuple(_KINDS)
# Kept out of training so evaluation measures transfer to layouts never trained on. Each has a
# trained relative (letter ~ e-mail, classified ~ notice, changelog ~ log/list), as real use would.
DEFAULT_HOLDOUT_KINDS: tuple[str, ...] = ("letter", "classified", "changelog")

# Kinds whose answers are mostly ordinary words, several of a type per document (see the section
# above). Kept apart from `KINDS`, so that every stream drawing from `KINDS` keeps its records; a
# trainer adds them on request (`TrainConfig.realistic_everyday`).
_EVERYDAY: dict[str, tuple[Callable[[Doc], str], tuple[str, ...]]] = {
    "house_note": (_house_note, ("note", "house notes", "message")),
    "site_info": (_site_info, ("information sheet", "sheet", "visitor information")),
    "field_diary": (_field_diary, ("diary", "field notes", "nature diary")),
    "club_bulletin": (_club_bulletin, ("bulletin", "newsletter")),
    "incident_report": (_incident_report, ("report", "maintenance report", "incident log")),
}
EVERYDAY_KINDS: tuple[str, ...] = tuple(_EVERYDAY)
ALL_KINDS: tuple[str, ...] = KINDS + EVERYDAY_KINDS
_BUILDERS = {**_KINDS, **_EVERYDAY}
MIN_QUESTIONS, MAX_QUESTIONS = 3, 6


def _phrase(d: Doc, question: str) -> str:
    """Now and then point at the document ("According to the e-mail, ..."), as people do."""
    first = question.split()[0].lower()
    mentions_doc = any(n.lower() in question.lower() for n in d.nouns)
    if first in _QUESTION_WORDS and not mentions_doc and d.chance(0.2):
        lead = d.pick("According to the", "Based on the", "In the", "From the")
        return f"{lead} {d.pick(*d.nouns)}, {question[0].lower()}{question[1:]}"
    if d.chance(0.05):
        return question + d.pick(" Answer briefly.", " Keep it short.")
    return question


def _finish(d: Doc, text: str) -> list[dict]:
    """Questions whose answer the text really contains, none giving its own answer away, one per answer."""
    qa, seen = [], set()
    for answer, questions, type_ in d.shuffled(d.asks):
        if answer in seen or not occurs(answer, text):
            continue
        options = [q for q in questions if answer.lower() not in q.lower()]
        if not options:
            continue
        seen.add(answer)
        qa.append({"q": _an(_phrase(d, d.pick(*options))), "a": answer, "type": type_})
    return qa[:d.rng.randint(MIN_QUESTIONS, MAX_QUESTIONS)]


def resolve_kinds(kinds: Iterable[str] | None = None, holdout_kinds: Iterable[str] = ()) -> list[str]:
    """Kinds to draw from: `kinds` (default `KINDS`, the everyday kinds only when named) minus
    `holdout_kinds`; unknown names are errors."""
    chosen = list(kinds) if kinds else list(KINDS)
    return choose_names(ALL_KINDS, chosen, holdout_kinds, "kinds")


def make_record(seed: int, index: int, kinds: Sequence[str] | None = None,
                open_values: OpenValues | None = None) -> dict:
    """Record `index` of run `seed`: `{"id", "genre", "kind", "text", "qa": [{"q", "a", "type"}]}`.

    Depends on (seed, index, kinds, open_values) only, so a trainer can draw record i directly.
    `genre` is "realistic:<kind>" so it never collides with a `synthetic` genre name.
    """
    names = list(kinds) if kinds else list(KINDS)
    unknown = sorted(set(names) - set(ALL_KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; known: {', '.join(ALL_KINDS)}")
    rng = random.Random(f"d2l-realistic:{seed}:{index}")
    kind = rng.choice(names)
    build, nouns = _BUILDERS[kind]
    for _ in range(20):  # rare dead ends (no fresh value, too few questions) redraw from the same stream
        d = Doc(rng, nouns, open_values)
        try:
            text = build(d).strip()
        except _Exhausted:
            continue
        text = re.sub(r"\n{3,}", "\n\n", text)
        qa = _finish(d, text)
        if len(qa) >= MIN_QUESTIONS:
            return {"id": f"real-{seed}-{index:06d}", "genre": f"realistic:{kind}", "kind": kind, "text": text, "qa": qa}
    raise RuntimeError(f"could not build a {kind} record for seed {seed}, index {index}")


def generate(n: int, seed: int = 0, kinds: Iterable[str] | None = None, holdout_kinds: Iterable[str] = ()) -> list[dict]:
    """Records 0..n-1 of run `seed`, drawn from `kinds` (default all) minus `holdout_kinds`."""
    names = resolve_kinds(kinds, holdout_kinds)
    return [make_record(seed, i, names) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_d2l.datasets.realistic", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="number of documents")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSONL file ('-' for stdout)")
    p.add_argument("--kinds", help="comma-separated kinds to draw from, or 'default' for the held-out kinds (default: all but the everyday ones)")
    p.add_argument("--holdout", help=f"comma-separated kinds to leave out, or 'default' ({','.join(DEFAULT_HOLDOUT_KINDS)})")
    p.add_argument("--list-kinds", action="store_true")
    args = p.parse_args(argv)
    if args.list_kinds:
        print("\n".join(ALL_KINDS))
        return 0
    return generate_to(p, lambda: generate(args.n, args.seed, name_list(args.kinds, DEFAULT_HOLDOUT_KINDS),
                                           name_list(args.holdout, DEFAULT_HOLDOUT_KINDS) or ()), args.out)


if __name__ == "__main__":
    sys.exit(main())
