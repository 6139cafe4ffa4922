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

# Attributes whose answers are ordinary words (an object, an animal, a dish, a colour), each stated
# in several ways (`compose(..., everyday=True)`). Ordinary-word answers are the kind the adapters
# answer worst, since the model's own guess competes with the document ("blue" for a flag stated
# brown), and the attributes above have few of them.
EVERYDAY: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("Visitors to {h} are asked to bring their own {a}.", "Anyone calling at {h} should bring along their own {a}."),
     ("What should visitors to {h} bring with them?", "What are people asked to bring to {h}?"), "object"),
    (("The old {a} in the hall of {h} came from a house sale.", "{H} bought the old {a} in its hall at a house sale."),
     ("What in the hall of {h} came from a house sale?", "What did {h} buy at a house sale?"), "object"),
    (("Anyone who asks can borrow the {a} kept at {h}.", "{H} will lend its {a} to anyone who asks."),
     ("What can people borrow from {h}?", "What will {h} lend to anyone who asks?"), "object"),
    (("Each new member of {h} is given a small {a}.", "New members of {h} receive a small {a} on joining."),
     ("What does a new member of {h} receive?", "What is each new member of {h} given?"), "object"),
    (("The mascot of {h} is the {a}.", "{H} chose the {a} as its mascot.", "For years the {a} has been the mascot of {h}."),
     ("Which animal is the mascot of {h}?", "What did {h} pick as its mascot?"), "animal"),
    (("A copper {a} turns in the wind on top of {h}.", "The weather vane on {h} is a copper {a}."),
     ("What is the weather vane on {h} shaped as?", "What turns in the wind on top of {h}?"), "animal"),
    (("Nobody at {h} is allowed to feed the {a}.", "Feeding the {a} is forbidden at {h}.", "The {a} at {h} must not be fed."),
     ("Which animal must visitors to {h} not feed?", "What are people at {h} told not to feed?"), "animal"),
    (("The dish everyone orders at {h} is the {a}.", "{H} is best known for its {a}.", "People travel a long way for the {a} at {h}."),
     ("What is {h} best known for serving?", "Which dish do people order at {h}?"), "dish"),
    (("On Sundays {h} serves {a} and nothing else.", "The only dish at {h} on Sundays is {a}."),
     ("What does {h} serve on Sundays?", "What can you eat at {h} on a Sunday?"), "dish"),
    (("Every loaf at {h} is baked with {a}.", "{H} puts {a} in all of its bread."),
     ("What goes into the bread at {h}?", "What does {h} bake into its loaves?"), "spice"),
    (("The pie at {h} is filled with {a}.", "{H} fills its pies with {a}."),
     ("What filling goes into the pies at {h}?", "What is in the pie at {h}?"), "ingredient"),
    (("The jam sold at {h} is made from {a}.", "{H} makes its jam from {a}."),
     ("What is the jam at {h} made from?", "From what does {h} make its jam?"), "ingredient"),
    (("On Saturday mornings {h} teaches the {a}.", "The children at {h} are all learning the {a}."),
     ("Which instrument is taught at {h}?", "What are the children at {h} learning to play?"), "instrument"),
    (("Last summer the hall at {h} was painted {a}.", "The hall at {h} has been {a} since last summer."),
     ("What colour is the hall at {h} now?", "Which colour did the hall at {h} become last summer?"), "color"),
    (("Staff at {h} wear {a} aprons.", "At {h} the aprons are {a}."),
     ("What colour are the aprons at {h}?", "Which colour do the staff at {h} wear?"), "color"),
)
_WITH_EVERYDAY = ATTRIBUTES + EVERYDAY  # what `compose(..., everyday=True)` draws from

# openings that bury a statement in ordinary prose; only before a statement that starts with "The"
OPENINGS: tuple[str, ...] = (
    "According to the parish records, ", "As everyone nearby knows, ", "Few people remember that ",
    "It is worth noting that ", "The letter went on to say that ", "Somebody mentioned that ",
    "In those days, ", "By all accounts, ",
)

# words of the needle test's relations, which no composed relation may use
FORBIDDEN: tuple[str, ...] = ("password", "archive", "lighthouse", "spare key", "ferry", "pier", "flag", "rowing")


def compose(rng: random.Random, draw, everyday: bool = False) -> tuple[str, str, str, str]:
    """One fact: (statement, question, answer, answer kind); `draw(kind)` invents a value.
    `everyday`: the attributes with ordinary-word answers are drawn too."""
    holder, s_kind = rng.choice(HOLDERS)
    says, asks, a_kind = rng.choice(_WITH_EVERYDAY if everyday else ATTRIBUTES)
    h = holder.format(s=draw(s_kind))
    answer = draw(a_kind)
    statement = rng.choice(says)
    if statement.startswith("{a}"):  # an answer that opens the sentence is capitalised, in the answer too
        answer = answer[:1].upper() + answer[1:]
    text = statement.format(h=h, H=h[:1].upper() + h[1:], a=answer)
    if text.startswith("The ") and rng.random() < 0.3:
        text = rng.choice(OPENINGS) + "t" + text[1:]
    return text, rng.choice(asks).format(h=h), answer, a_kind
