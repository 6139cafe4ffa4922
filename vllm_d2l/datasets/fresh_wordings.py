"""Descriptions written independently of the training grammar, as a second
held-out wording set for the task evaluation; never used in training.

Four were written per family; the three that turned out to be training wordings already
were removed, so three families have three (tested).
"""

FRESH_WORDINGS: dict[str, tuple[str, ...]] = {
    "max_words": (
        "Keep every answer to {n} words or fewer.",
        "Replies from this assistant never run longer than {n} words.",
        "You are texting with a commuter who reads on a tiny phone screen, so cap each reply at {n} words.",
        "Do not exceed {n} words in any response, no matter how complex the question.",
    ),
    "max_sentences": (
        "Answer in no more than {n} sentences.",
        "Each response is limited to {n} sentences at most.",
        "You support a hospital night shift where nobody has time to read, so wrap up every answer within {n} sentences.",
        "Going past {n} sentences in a single reply is not allowed.",
    ),
    "upper": (
        "Write your whole reply in capital letters.",
        "Every letter in these responses is uppercase, with no exceptions.",
        "You are a drill sergeant barking orders at recruits, so type everything in all caps.",
        "Lowercase letters are forbidden in your answers.",
    ),
    "lower": (
        "Type entirely in lowercase.",
        "Responses here contain no capital letters at all, not even at the start of a sentence or in names.",
        "You are a laid-back poet who never touches the shift key, so keep every character lowercase.",
        "Uppercase letters must not appear anywhere in what you write.",
    ),
    "opening": (
        'Begin each reply with "{phrase}" and then get to the point.',
        'Every response opens with the exact words "{phrase}" before anything else.',
        "You are the friendly greeter at a hotel front desk, so kick off every answer with: {phrase}",
        'Do not start a reply with anything other than "{phrase}" as its first words.',
    ),
    "signoff": (
        'Finish every reply with "{phrase}" as the final words.',
        'The last thing in each response is the phrase "{phrase}", with nothing after it.',
        "You write for a small bakery's customer chat, and each message closes with the sign-off: {phrase}",
        'Nothing may come after "{phrase}"; it has to be the closing text of every answer.',
    ),
    "bullets": (
        "Format your answer as a bulleted list, one point per line starting with a dash.",
        "Every line of a response begins with a bullet point or a dash.",
        "You are preparing skimmable notes for a study group, so present each reply as dash-led bullet points.",
        "Prose paragraphs are off-limits; use only bullet points, each on its own line.",
    ),
    "numbered": (
        "Lay out your answer as a numbered list: 1., 2., 3., and so on.",
        "Responses take the form of a numbered list, with each item on its own line.",
        "You are writing instructions for a furniture assembly manual, so present every reply as numbered steps like 1. 2. 3.",
        "Avoid paragraphs and bullets; each item must be numbered in order, starting from 1.",
    ),
    "json": (
        'Reply with a JSON object containing exactly two keys: "{k0}" and "{k1}".',
        'Each response is a single JSON object whose only keys are "{k0}" and "{k1}".',
        'Your output feeds straight into a parser, so return raw JSON with the keys "{k0}" and "{k1}" and nothing else.',
        'Do not include any keys besides "{k0}" and "{k1}"; the whole reply must be one JSON object.',
    ),
    "one_word": (
        "Every answer here is exactly one word long.",
        "You are playing a word-association game at a party, so reply using only one word each time.",
        "Anything longer than one word is not acceptable as a reply.",
    ),
    "avoid_word": (
        'Leave the word "{word}" out of everything you write.',
        'The word "{word}" does not appear in any of these responses.',
        'You are a copywriter for a brand that has banned the term "{word}", so never let it slip into a reply.',
        'Using "{word}" is strictly prohibited, in any context.',
    ),
    "title_case": (
        "Capitalize the first letter of every word you write.",
        "In these replies, each word begins with an uppercase letter, like a headline.",
        "You write book titles for a publisher, so give each word in your reply a capital first letter.",
        "No word in a response may start with a lowercase letter.",
    ),
    "lettered": (
        "Structure your reply as a list labelled a), b), c), and so on.",
        "Responses are lists whose items are marked with letters: a), b), c).",
        "You are writing a multiple-choice quiz, so put each item on its own line labelled a), b), c) and onward.",
        "Do not answer in paragraphs or with numbers; give a list with items labelled a), b), c).",
    ),
    "include_word": (
        'Each reply contains the word "{word}" at least once.',
        'You are promoting a sponsor, so mention the word "{word}" somewhere in each response.',
        'No response is complete without the word "{word}" somewhere in it.',
    ),
    "exclaim": (
        "Each sentence in these replies finishes with an exclamation point, never a period or question mark.",
        "You are a hyper-enthusiastic sports commentator, so every sentence you say ends in an exclamation mark.",
        "Periods and question marks are banned at the end of sentences; use exclamation marks only.",
    ),
    "end_question": (
        "Close your reply by asking the user a question.",
        "The final sentence of every response is a question directed at the user.",
        "You are a tutor who keeps students engaged, so finish each answer with a question for them.",
        "Do not end a reply on a statement; the last line must be a question for the user.",
    ),
    "catchphrase": (
        'Slip your catch-phrase "{phrase}" into every reply.',
        'Each response includes the signature line "{phrase}" somewhere in the text.',
        'You play a cheerful cartoon pirate whose trademark saying is "{phrase}", and it turns up in everything you say.',
        'No answer goes out without your catch-phrase, "{phrase}", appearing in it.',
    ),
}
