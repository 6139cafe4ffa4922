"""Descriptions written apart from the training grammar and from both reported wording sets (the
held-out fixed wordings and `FRESH_WORDINGS`), used only to choose training snapshots; never
trained on, and never reported as a result.

Two per family, for every family in `FAMILIES` (the held-out ones too): one plain instruction and
one framed another way (a persona, a reason, a statement about the replies). Each uses the same
placeholders as its family's fixed wordings (tested).
"""

SELECT_WORDINGS: dict[str, tuple[str, ...]] = {
    "max_words": (
        "Trim each reply down to {n} words or under.",
        "These answers get printed on tiny fortune-cookie slips, so none of them can be longer than {n} words.",
    ),
    "max_sentences": (
        "Fit each answer into {n} sentences at the very most.",
        "Think of every reply as having a budget of {n} sentences, and never spend beyond it.",
    ),
    "upper": (
        "Print your answers using capital letters from start to finish.",
        "I have trouble reading small print, so please make sure there isn't a single lowercase letter in anything you send me.",
    ),
    "lower": (
        "Use lowercase for every single letter, names and sentence starts included.",
        "Replies in this chat follow a relaxed, all-lowercase style, so a capital letter should never show up in them.",
    ),
    "opening": (
        'Preface every response with "{phrase}".',
        'You host a morning radio show, and each time you answer a listener, the very first thing out of your mouth is "{phrase}".',
    ),
    "signoff": (
        'Tack "{phrase}" onto the end of every reply.',
        'As a pen pal who writes short letters, you sign every one of them "{phrase}" at the very bottom.',
    ),
    "bullets": (
        "Organise what you say as bullet points, giving each one its own line that opens with a dash.",
        "I only skim what I read, so please give me your replies as short bullet points instead of paragraphs.",
    ),
    "numbered": (
        "Set out your answer in numbered form, one line per item, counting up from 1.",
        "Readers of this help desk follow along by number, so make every reply an ordered list, one item per line, labelled 1., 2., 3.",
    ),
    "json": (
        'Structure each answer as JSON: one object, keyed by "{k0}" and "{k1}" only.',
        'My program stores your answers in a database, so each one has to be a single JSON object with exactly two fields, named "{k0}" and "{k1}".',
    ),
    "one_word": (
        "Each reply should consist of one lone word.",
        "I'm filling in a crossword, so give me every answer as one word without any explanation.",
    ),
    "avoid_word": (
        'Omit the word "{word}" from every answer.',
        'My screen reader crashes whenever it meets the word "{word}", so your replies have to do without it entirely.',
    ),
    "title_case": (
        "Write so that the initial letter of each word is a capital.",
        'Style your replies like the lettering on an old film poster: every word, even short ones such as "a" or "of", starts with a capital.',
    ),
    "lettered": (
        "Split your reply into separate lines tagged a), b), c), continuing through the alphabet.",
        "I copy your replies into an outline that uses letters, not numbers, so give each point its own line starting a), b), c) in turn.",
    ),
    "include_word": (
        'Find a place for the word "{word}" in everything you write.',
        'You are running a word-of-the-day challenge, and each of your answers has to feature "{word}" at least once.',
    ),
    "exclaim": (
        "Use an exclamation point as the final mark of every sentence.",
        "To keep the mood upbeat, let every sentence land on an exclamation mark; periods are not welcome here.",
    ),
    "end_question": (
        "Conclude each response by putting a question of your own to the user.",
        "You are a curious interviewer who keeps the talk going, so your replies always close on a question back to the person.",
    ),
    "catchphrase": (
        'Drop the phrase "{phrase}" somewhere into each of your answers.',
        'You are a larger-than-life game-show host known for saying "{phrase}", and you never answer without it.',
    ),
}
