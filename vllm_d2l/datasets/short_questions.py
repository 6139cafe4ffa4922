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


# More questions (`task_more_questions`, from step 9600): with 122 questions the adapters kept the
# answers of those, and on the evaluation's QA check turned "New Delhi" into "Mumbai" and a hexagon's
# 6 sides into 12 (of the questions the base model answers right, 57 % stayed right at step 9500).
# A wider spread of facts asks the adapters to leave facts alone in general, not these.
_MORE_CAPITALS = [("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Belgium", "Brussels"),
                  ("the Netherlands", "Amsterdam"), ("Switzerland", "Bern"), ("Hungary", "Budapest"),
                  ("the Czech Republic", "Prague"), ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
                  ("Saudi Arabia", "Riyadh"), ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"), ("Vietnam", "Hanoi"),
                  ("Indonesia", "Jakarta"), ("the Philippines", "Manila"), ("Malaysia", "Kuala Lumpur"),
                  ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Ethiopia", "Addis Ababa"), ("Morocco", "Rabat"),
                  ("Colombia", "Bogota|Bogotá"), ("Chile", "Santiago"), ("Venezuela", "Caracas"), ("Ukraine", "Kyiv|Kiev"),
                  ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Iceland", "Reykjavik"),
                  ("New Zealand", "Wellington"), ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
                  ("Jamaica", "Kingston"), ("Scotland", "Edinburgh"), ("Wales", "Cardiff")]
_MORE_LANGUAGES = [("Japan", "Japanese"), ("South Korea", "Korean"), ("Finland", "Finnish"), ("Hungary", "Hungarian"),
                   ("Iran", "Persian|Farsi"), ("Vietnam", "Vietnamese"), ("Thailand", "Thai"), ("Israel", "Hebrew"),
                   ("Denmark", "Danish"), ("Norway", "Norwegian"), ("Indonesia", "Indonesian"),
                   ("Argentina", "Spanish"), ("Austria", "German")]
_MORE_OPPOSITES = [("tall", "short"), ("hard", "soft|easy"), ("rich", "poor"), ("cheap", "expensive"), ("clean", "dirty"),
                   ("strong", "weak"), ("loud", "quiet|soft"), ("thick", "thin"), ("push", "pull"), ("buy", "sell"),
                   ("first", "last"), ("inside", "outside"), ("love", "hate"), ("true", "false")]
_PLURALS = [("mouse", "mice"), ("child", "children"), ("foot", "feet"), ("tooth", "teeth"), ("goose", "geese"),
            ("man", "men"), ("woman", "women"), ("person", "people"), ("box", "boxes"), ("leaf", "leaves"),
            ("knife", "knives"), ("city", "cities")]
_PAST = [("go", "went"), ("eat", "ate"), ("run", "ran"), ("see", "saw"), ("write", "wrote"), ("swim", "swam"),
         ("sing", "sang"), ("take", "took"), ("give", "gave"), ("buy", "bought"), ("think", "thought"), ("catch", "caught")]
_YOUNG = [("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"), ("frog", "tadpole"), ("bear", "cub"),
          ("duck", "duckling"), ("kangaroo", "joey"), ("goose", "gosling"), ("deer", "fawn"), ("goat", "kid")]
_SOUNDS = [("cow", "moo"), ("dog", "bark|woof"), ("cat", "meow|miaow"), ("duck", "quack"), ("sheep", "baa|bleat"),
           ("pig", "oink|grunt"), ("horse", "neigh"), ("owl", "hoot"), ("snake", "hiss"), ("lion", "roar")]
_MIXES = [("red", "white", "pink"), ("red", "yellow", "orange"), ("blue", "red", "purple|violet"),
          ("black", "white", "gray|grey")]
_MORE_MISC = [("How many sides does a pentagon have?", "five|5"), ("How many sides does an octagon have?", "eight|8"),
              ("How many degrees are in a right angle?", "90|ninety"), ("How many degrees are in a full circle?", "360"),
              ("What is the largest continent?", "Asia"), ("Which ocean lies between Europe and North America?", "Atlantic"),
              ("What is the longest river in South America?", "Amazon"), ("What do you call a group of wolves?", "pack"),
              ("Who invented the telephone?", "Bell"), ("Who discovered penicillin?", "Fleming"),
              ("Who developed the theory of relativity?", "Einstein"), ("Who painted The Starry Night?", "van Gogh|Gogh"),
              ("Which country is shaped like a boot?", "Italy"), ("In which country is the Eiffel Tower?", "France"),
              ("In which city is the Statue of Liberty?", "New York"), ("What is the largest country in South America?", "Brazil")]
_WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
# sums, products and differences the other lists and the QA check do not ask (5 + 3, 6 + 6, 9 x 3, 10 - 4)
_MORE_SUMS = [(1, 1), (4, 4), (5, 5), (8, 2), (3, 9), (11, 4), (6, 3), (7, 8), (2, 13), (14, 6), (25, 25), (30, 12)]
_MORE_PRODUCTS = [(2, 2), (3, 5), (4, 4), (6, 6), (5, 5), (2, 9), (7, 3), (8, 8), (9, 9), (11, 2)]
_DIFFERENCES = [(9, 2), (15, 5), (20, 8), (7, 7), (12, 3), (30, 10), (50, 25), (18, 9)]


def _asked(table: list[tuple[str, list[tuple]]]) -> list[tuple[str, str]]:
    """(question, answers) for every entry of every (template, entries) row: an entry fills the
    template's blanks and its last field is the answer."""
    return [(template.format(*entry[:-1]), entry[-1]) for template, entries in table for entry in entries]


def _arithmetic(pairs: list[tuple[int, int]], op) -> list[tuple[int, int, str]]:
    return [(a, b, str(op(a, b))) for a, b in pairs]


def _following(names: list[str]) -> list[tuple[str, str]]:
    return [(n, names[(i + 1) % len(names)]) for i, n in enumerate(names)]


def more_questions() -> list[tuple[str, str]]:
    """The questions `task_more_questions` adds: (question, accepted answers)."""
    return _asked([
        ("What is the capital of {}?", _MORE_CAPITALS), ("What language is mainly spoken in {}?", _MORE_LANGUAGES),
        ("What is the opposite of {}?", _MORE_OPPOSITES), ("What is the plural of {}?", _PLURALS),
        ("What is the past tense of {}?", _PAST), ("What is a baby {} called?", _YOUNG),
        ("What sound does a {} make?", _SOUNDS), ("What color do you get by mixing {} and {}?", _MIXES),
        ("What day comes after {}?", _following(_WEEK)), ("What month comes after {}?", _following(_MONTHS)),
        ("What is {} plus {}?", _arithmetic(_MORE_SUMS, int.__add__)),
        ("What is {} times {}?", _arithmetic(_MORE_PRODUCTS, int.__mul__)),
        ("What is {} minus {}?", _arithmetic(_DIFFERENCES, int.__sub__)),
    ]) + _MORE_MISC


def _short(answer: str) -> str:
    """The answer as a reply of its own: the first accepted form, capitalised, with a full stop."""
    first = answer.split("|")[0]
    return first[0].upper() + first[1:] + "."


def questions(more: bool = False) -> list[dict]:
    """Every training question: `{"q", "answers"}` (accepted forms, "|"-separated) and `short`,
    the answer as a one- or two-word reply; with `more`, `more_questions()` after them."""
    qs = _asked([
        ("What is the capital of {}?", _CAPITALS), ("What language is mainly spoken in {}?", _LANGUAGES),
        ("How many legs does a {} have?", _LEGS), ("What color is {}?", _COLOURS),
        ("What is the opposite of {}?", _OPPOSITES), ("Who wrote {}?", _AUTHORS), ("How many {} are in {}?", _UNITS),
        ("What is the chemical symbol for {}?", _SYMBOLS), ("What is {} plus {}?", _arithmetic(_SUMS, int.__add__)),
        ("What is {} times {}?", _arithmetic(_PRODUCTS, int.__mul__)),
    ])
    qs += _MISC + (more_questions() if more else [])
    return [{"q": q, "answers": a, "short": _short(a)} for q, a in qs]
