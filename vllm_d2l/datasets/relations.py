"""Fact relations composed from parts: who or what holds a fact, which attribute, how it is said.

Why: with a fixed list of sixteen needle sentences the generator learnt those sixteen relations.
It recalled 71 % of such facts hidden in 600-1,000 tokens of held-out prose, but only one needle
in nine of the needle test's own relations at 1,024 tokens. A relation here is a holder ("the
Tolven bakery", "Mira's workshop") crossed with an attribute (its caretaker, the colour of its
door, the year it was built), each attribute stated in several ways and asked in words that need
not mirror the statement, sometimes behind an opening phrase ("According to the parish records,
..."). That gives thousands of relations, so the only thing worth learning is to store whatever
fact a sentence states.

None of the needle test's relations (`evaluation/needle.py`: an archive's password, a
lighthouse's spare key, a ferry's pier, a rowing club's flag) can be composed: `FORBIDDEN` lists
their words, and a test checks every part against it.
"""
from __future__ import annotations

import random

# (holder phrase with {s}, kind of the subject value); "the" is lower case, capitalised at a sentence's start
HOLDERS: tuple[tuple[str, str], ...] = (
    ("the {s} bakery", "place"), ("the {s} school", "place"), ("the {s} mill", "place"),
    ("the {s} observatory", "place"), ("the {s} fire station", "place"), ("the {s} cottage hospital", "place"),
    ("the {s} theatre", "place"), ("the {s} library", "place"), ("the {s} post office", "place"),
    ("the {s} museum", "place"), ("the {s} boatyard", "place"), ("the {s} inn", "place"),
    ("the {s} brewery", "place"), ("the {s} garden society", "place"), ("the {s} chess club", "place"),
    ("the {s} town hall", "place"), ("the {s} weaving shed", "place"), ("the {s} tea room", "place"),
    ("the {s} railway station", "place"), ("the {s} sawmill", "place"), ("the {s} dairy", "place"),
    ("the {s} bookshop", "company"), ("the {s} print works", "company"), ("the {s} repair shop", "company"),
    ("{s}'s workshop", "person"), ("{s}'s cottage", "person"), ("{s}'s bakery", "person"),
    ("{s}'s studio", "person"), ("{s}'s market stall", "person"),
)

# (statements with {h} (holder, mid-sentence), {H} (holder opening the sentence) and {a} (answer);
#  questions with {h}; answer kind)
ATTRIBUTES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("The front door of {h} is painted {a}.", "{H} has a front door painted {a}."),
     ("What colour is the front door of {h}?", "What colour is {h}'s front door painted?"), "color"),
    (("The roof of {h} is {a}.", "{H} sits under a roof of {a} tiles."), ("What colour is the roof of {h}?",), "color"),
    (("The delivery van of {h} is {a}.", "{H} sends its goods out in a van painted {a}."),
     ("What colour is the van of {h}?",), "color"),
    (("The curtains at {h} are {a}.", "{H} hangs {a} curtains in every window."),
     ("What colour are the curtains at {h}?",), "color"),
    (("The caretaker of {h} is {a}.", "{a} looks after {h} as its caretaker.", "{H} is looked after by {a}."),
     ("Who is the caretaker of {h}?", "Who looks after {h}?"), "person"),
    (("The treasurer of {h} is {a}.", "{a} keeps the accounts of {h}."),
     ("Who keeps the accounts of {h}?", "Who is the treasurer of {h}?"), "person"),
    (("{H} was founded by {a}.", "{a} founded {h}."), ("Who founded {h}?", "Who was the founder of {h}?"), "person"),
    (("The head cook at {h} is {a}.", "{a} runs the kitchen at {h}."), ("Who runs the kitchen at {h}?",), "person"),
    (("{H} once belonged to {a}.", "Before the present owners, {h} was owned by {a}."),
     ("Who owned {h} before its present owners?", "To whom did {h} once belong?"), "person"),
    (("The night watchman at {h} is {a}.",), ("Who keeps watch at {h} at night?",), "person"),
    (("The alarm code at {h} is {a}.", "{H} uses the alarm code {a}."), ("What is the alarm code at {h}?",), "code"),
    (("The safe at {h} opens with the combination {a}.",), ("What combination opens the safe at {h}?",), "code"),
    (("The booking reference for {h} is {a}.",), ("What is the booking reference for {h}?",), "code"),
    (("The cat at {h} is called {a}.", "{H} keeps a cat named {a}."), ("What is the cat at {h} called?",), "codename"),
    (("The old boat kept at {h} is named {a}.",), ("What is the name of the boat kept at {h}?",), "codename"),
    (("The newsletter of {h} is titled {a}.", "{H} prints a newsletter called {a}."),
     ("What is the newsletter of {h} called?",), "codename"),
    (("The dog at {h} answers to {a}.",), ("What is the name of the dog at {h}?",), "first"),
    (("{H} has {a} rooms.", "There are {a} rooms in {h}."), ("How many rooms are there in {h}?",), "count"),
    (("{H} employs {a} people.", "{H} has a staff of {a}."), ("How many people work at {h}?",), "count"),
    (("Exactly {a} steps lead up to {h}.",), ("How many steps lead up to {h}?",), "count"),
    (("{H} owns {a} bicycles.",), ("How many bicycles does {h} own?",), "count"),
    (("{H} is closed on {a}.", "Every {a}, {h} stays shut."), ("On which day is {h} closed?",), "weekday"),
    (("Fresh bread reaches {h} on {a}.",), ("On which day does fresh bread reach {h}?",), "weekday"),
    (("{H} opens at {a}.", "The doors of {h} open at {a}."), ("At what time does {h} open?",), "time"),
    (("Lunch at {h} is served at {a}.",), ("When is lunch served at {h}?",), "time"),
    (("{H} was built in {a}.", "The building of {h} went up in {a}."), ("In which year was {h} built?",), "year"),
    (("The clock above {h} dates from {a}.",), ("From which year does the clock above {h} date?",), "year"),
    (("{H} was rebuilt after a fire in {a}.",), ("When was {h} rebuilt after a fire?",), "year"),
    (("A year's membership of {h} costs {a}.",), ("How much does a year's membership of {h} cost?",), "money"),
    (("The repairs to {h} came to {a}.", "Repairing {h} cost {a}."), ("How much did the repairs to {h} cost?",), "money"),
    (("{H} reopens on {a}.",), ("On what date does {h} reopen?", "When does {h} reopen?"), "date"),
    (("The annual dinner of {h} falls on {a}.",), ("When is the annual dinner of {h}?",), "date"),
    (("{H} stands {a} from the railway.",), ("How far from the railway does {h} stand?",), "distance"),
    (("The great bell of {h} weighs {a}.",), ("How much does the great bell of {h} weigh?",), "weight"),
    (("The water tank of {h} holds {a}.",), ("How much does the water tank of {h} hold?",), "volume"),
    (("The walk from the square to {h} takes {a}.",), ("How long is the walk from the square to {h}?",), "minutes"),
    (("{H} closes for repairs every {a}.",), ("In which month does {h} close for repairs?",), "month"),
    (("Above the door of {h} hangs an old {a}.",), ("What hangs above the door of {h}?",), "object"),
    (("The prize at {h} this year is a painted {a}.",), ("What is the prize at {h} this year?",), "object"),
    (("The soup at {h} is made with {a}.",), ("What is the soup at {h} made with?",), "ingredient"),
    (("The sign of {h} shows a running {a}.",), ("What animal does the sign of {h} show?",), "animal"),
    (("The band at {h} is led by a {a} player.",), ("What instrument does the leader of the band at {h} play?",), "instrument"),
    (("The supplies for {h} come from {a}.",), ("Where do the supplies for {h} come from?",), "place"),
    (("The first-aid box at {h} is kept in room {a}.",), ("In which room is the first-aid box at {h} kept?",), "room"),
)

# openings that bury a statement in ordinary prose; only before a statement that starts with "The"
OPENINGS: tuple[str, ...] = (
    "According to the parish records, ", "As everyone nearby knows, ", "Few people remember that ",
    "It is worth noting that ", "The letter went on to say that ", "Somebody mentioned that ",
    "In those days, ", "By all accounts, ",
)

# words of the needle test's relations, which no composed relation may use
FORBIDDEN: tuple[str, ...] = ("password", "archive", "lighthouse", "spare key", "ferry", "pier", "flag", "rowing")


def compose(rng: random.Random, draw) -> tuple[str, str, str, str]:
    """One fact: (statement, question, answer, answer kind); `draw(kind)` invents a value."""
    holder, s_kind = rng.choice(HOLDERS)
    says, asks, a_kind = rng.choice(ATTRIBUTES)
    h = holder.format(s=draw(s_kind))
    answer = draw(a_kind)
    statement = rng.choice(says)
    if statement.startswith("{a}"):  # an answer that opens the sentence is capitalised, in the answer too
        answer = answer[:1].upper() + answer[1:]
    text = statement.format(h=h, H=h[:1].upper() + h[1:], a=answer)
    if text.startswith("The ") and rng.random() < 0.3:
        text = rng.choice(OPENINGS) + "t" + text[1:]
    return text, rng.choice(asks).format(h=h), answer, a_kind
