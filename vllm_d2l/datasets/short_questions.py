"""Ordinary questions with short, well-known answers, for the task mode's training records.

A task adapter must change how the model answers, not whether it answers. Trained only on
open prompts ("Explain tides."), whose rewritten replies are often cut short, the adapters
learnt to stop early, and on factual questions they kept 58 % of the base model's accuracy.
Records now mix these questions in: their base replies are short, so most rules leave the
answer in place, and where a rule must shorten a reply (a word limit, one word) the target is
the short answer itself, not a cut sentence.

None of these is in the evaluation's QA check (`evaluation.tasks.QA_CHECK`; tested), so that
check stays held out.
"""
from __future__ import annotations

_CAPITALS = [("Germany", "Berlin"), ("Spain", "Madrid"), ("Canada", "Ottawa"), ("Egypt", "Cairo"),
             ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"), ("Greece", "Athens"),
             ("Ireland", "Dublin"), ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Russia", "Moscow"),
             ("the United Kingdom", "London"), ("China", "Beijing"), ("South Korea", "Seoul"),
             ("Sweden", "Stockholm"), ("Poland", "Warsaw"), ("Argentina", "Buenos Aires"),
             ("Thailand", "Bangkok"), ("Cuba", "Havana")]
_LANGUAGES = [("Germany", "German"), ("Mexico", "Spanish"), ("China", "Chinese|Mandarin"),
              ("Egypt", "Arabic"), ("Russia", "Russian"), ("Greece", "Greek"), ("the Netherlands", "Dutch"),
              ("Sweden", "Swedish"), ("Turkey", "Turkish"), ("Poland", "Polish")]
_LEGS = [("dog", "four|4"), ("cat", "four|4"), ("ant", "six|6"), ("bird", "two|2"), ("horse", "four|4"),
         ("beetle", "six|6"), ("octopus", "eight|8"), ("chicken", "two|2"), ("butterfly", "six|6")]
_COLOURS = [("a ripe banana", "yellow"), ("grass", "green"), ("snow", "white"), ("a ripe tomato", "red"),
            ("coal", "black"), ("a lemon", "yellow"), ("a carrot", "orange"), ("milk", "white"),
            ("a strawberry", "red"), ("a blueberry", "blue")]
_OPPOSITES = [("big", "small|little"), ("fast", "slow"), ("up", "down"), ("happy", "sad"), ("early", "late"),
              ("wet", "dry"), ("open", "closed|shut"), ("full", "empty"), ("light", "dark|heavy"),
              ("young", "old"), ("win", "lose"), ("left", "right")]
_AUTHORS = [("Pride and Prejudice", "Jane Austen|Austen"), ("Hamlet", "William Shakespeare|Shakespeare"),
            ("Moby-Dick", "Herman Melville|Melville"), ("War and Peace", "Leo Tolstoy|Tolstoy"),
            ("Oliver Twist", "Charles Dickens|Dickens"), ("Frankenstein", "Mary Shelley|Shelley"),
            ("Don Quixote", "Miguel de Cervantes|Cervantes"), ("The Origin of Species", "Charles Darwin|Darwin")]
_UNITS = [("minutes", "an hour", "60|sixty"), ("seconds", "a minute", "60|sixty"),
          ("months", "a year", "12|twelve"), ("centimetres", "a metre", "100|hundred"),
          ("grams", "a kilogram", "1000|1,000|thousand"), ("days", "a leap year", "366"),
          ("sides", "a triangle", "three|3"), ("sides", "a square", "four|4"),
          ("players", "a football team on the field", "eleven|11"), ("strings", "a standard guitar", "six|6")]
_SYMBOLS = [("oxygen", "O"), ("iron", "Fe"), ("sodium", "Na"), ("silver", "Ag"), ("hydrogen", "H"),
            ("carbon", "C"), ("helium", "He"), ("potassium", "K")]
_SUMS = [(2, 2), (3, 4), (6, 7), (10, 5), (9, 9), (12, 8), (20, 30), (7, 1), (15, 4)]
_PRODUCTS = [(3, 3), (4, 5), (6, 2), (7, 7), (10, 10), (8, 3)]
_MISC = [("What is the largest ocean on Earth?", "Pacific"), ("What is the tallest mountain in the world?", "Mount Everest|Everest"),
         ("What is the longest river in Africa?", "Nile"), ("What is the closest star to Earth?", "Sun"),
         ("What do cows drink?", "water"), ("What do caterpillars turn into?", "butterflies|butterfly"),
         ("Which organ pumps blood through the body?", "heart"), ("What is the freezing point of water in Celsius?", "0|zero"),
         ("Which planet do we live on?", "Earth"), ("What is the smallest prime number?", "2|two"),
         ("Who painted the Mona Lisa?", "Leonardo da Vinci|Leonardo|da Vinci"), ("What is the hardest natural substance?", "diamond"),
         ("Which animal has a long trunk?", "elephant"), ("What do you call a baby cat?", "kitten"),
         ("What do you call a baby dog?", "puppy"), ("What season comes after winter?", "spring"),
         ("What is the first letter of the English alphabet?", "A"), ("Which direction does the sun rise in?", "east"),
         ("What instrument has black and white keys?", "piano"), ("What is the currency of the United States?", "dollar")]


def _short(answer: str) -> str:
    """The answer as a reply of its own: the first accepted form, capitalised, with a full stop."""
    first = answer.split("|")[0]
    return first[0].upper() + first[1:] + "."


def questions() -> list[dict]:
    """Every training question: `{"q", "answers"}` (accepted forms, "|"-separated) and `short`,
    the answer as a one- or two-word reply."""
    qs = [(f"What is the capital of {c}?", a) for c, a in _CAPITALS]
    qs += [(f"What language is mainly spoken in {c}?", a) for c, a in _LANGUAGES]
    qs += [(f"How many legs does a {x} have?", a) for x, a in _LEGS]
    qs += [(f"What color is {x}?", a) for x, a in _COLOURS]
    qs += [(f"What is the opposite of {x}?", a) for x, a in _OPPOSITES]
    qs += [(f"Who wrote {b}?", a) for b, a in _AUTHORS]
    qs += [(f"How many {u} are in {w}?", a) for u, w, a in _UNITS]
    qs += [(f"What is the chemical symbol for {e}?", a) for e, a in _SYMBOLS]
    qs += [(f"What is {a} plus {b}?", str(a + b)) for a, b in _SUMS]
    qs += [(f"What is {a} times {b}?", str(a * b)) for a, b in _PRODUCTS]
    qs += _MISC
    return [{"q": q, "answers": a, "short": _short(a)} for q, a in qs]
