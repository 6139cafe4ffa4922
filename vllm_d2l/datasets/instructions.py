"""Free-form behaviour instructions ("You are a pirate. Relate every answer to cooking.") for
distilling what a description in the prompt does, where no rule can be checked or built.

The task families teach a fixed set of rules through replies rewritten to follow them, and the
held-out families (lower case, numbered lists, catch-phrases) stay at about 0 %: twenty-two rules
give the generator little to generalise from, and every held-out description is read as its
nearest trained rule ("a numbered list" comes out as dashes). Text-to-LoRA's lesson is the number
of tasks. These instructions are thousands of descriptions of tone, persona, audience, topic,
content, style and stance, composed from small lists; their records keep the base model's own
replies and are trained by KL alone to the base model told the instruction before the question
(`objectives.guided_topk`, `TrainConfig.instruction_guidance`): context distillation. Nothing
here names a held-out family's rule: no case of letters, no numbering or steps, no catch-phrase
or signature line (tested).
"""
from __future__ import annotations

import random

from .tasks import pick_replies

_PERSONAS = ["pirate", "robot", "wizard", "cowboy", "detective", "poet", "chef", "grandmother",
             "sports commentator", "news anchor", "kindergarten teacher", "mad scientist", "medieval knight",
             "astronaut", "tour guide", "librarian", "drill sergeant", "fortune teller", "surfer", "butler",
             "game show host", "park ranger", "philosopher", "stand-up comedian", "lawyer", "farmer"]
_TONES = ["formal", "casual", "enthusiastic", "gloomy", "sarcastic", "calm", "friendly", "stern", "humble",
          "dramatic", "playful", "polite", "mysterious", "grumpy", "cheerful", "solemn", "excited", "bored"]
_AUDIENCES = ["a five-year-old", "a physics professor", "a busy executive", "a tourist", "a teenager",
              "a new employee", "someone who has never used a computer", "a group of farmers",
              "an alien visiting Earth", "a nervous student", "a medieval peasant", "a golden retriever"]
_TOPICS = ["cooking", "football", "the ocean", "music", "space travel", "gardening", "trains", "cats",
           "the weather", "chess", "dinosaurs", "video games", "ancient Rome", "mountains", "coffee", "dancing"]
_CONTENT = ["Give an example in every answer.", "Mention a historical fact in each reply.",
            "Add a fun fact at the end.", "Include a safety warning.", "Recommend a book related to the question.",
            "Compare the answer to something from everyday life.", "Mention one common mistake people make.",
            "Say why the topic matters.", "Offer a tip the reader can use today.", "Add a short anecdote.",
            "Point out one thing that is still unknown.", "Suggest something to try at home."]
_STYLES = ["Use only simple words.", "Use long, sophisticated words.", "Use vivid metaphors.",
           "Speak in rhyme.", "Be as detailed as you can.", "Use plenty of adjectives.",
           "Write like a newspaper headline followed by a short story.", "Use emojis.",
           "Write it as a short poem.", "Write it as a dialogue between two friends.",
           "Sound like a movie trailer.", "Address the reader as \"my friend\".", "Use British spelling.",
           "Write in the second person.", "Avoid technical jargon.", "Use as much technical jargon as possible.",
           "Keep every sentence very short.", "Write long, flowing sentences."]
_STANCES = ["Be very optimistic about everything.", "Be sceptical and question common claims.",
            "Politely disagree with the question before answering.", "Show strong emotion.",
            "Stay neutral and factual.", "Be encouraging, as a coach would.", "Apologise before answering.",
            "Express wonder and amazement.", "Sound slightly impatient."]

# (template, filler list) per kind; a filler-free kind is its list of sentences.
_KINDS: dict[str, tuple[tuple[str, ...], list[str] | None]] = {
    "persona": (("You are a {x}.", "Answer as a {x} would.", "Pretend to be a {x} when you reply.",
                 "Reply in the voice of a {x}."), _PERSONAS),
    "tone": (("Answer in a {x} tone.", "Be {x} in every reply.", "Your replies should sound {x}.",
              "Keep your tone {x}."), _TONES),
    "audience": (("Explain things as if to {x}.", "Your reader is {x}.", "Reply so that {x} would understand.",
                  "Write for {x}."), _AUDIENCES),
    "topic": (("Relate every answer to {x}.", "Bring {x} into each reply.", "Connect whatever you say to {x}.",
               "Use {x} as the source of your comparisons."), _TOPICS),
    "content": (("{x}",), _CONTENT),
    "style": (("{x}",), _STYLES),
    "stance": (("{x}",), _STANCES),
}
_FRAMES = ("{x}", "Please: {x}", "Rule for this conversation: {x}", "From now on: {x}", "Instruction: {x}",
           "{x} Do this in every reply.")
KINDS = tuple(_KINDS)


def _one(rng: random.Random, kind: str) -> str:
    templates, fillers = _KINDS[kind]
    return rng.choice(templates).format(x=rng.choice(fillers)) if fillers else rng.choice(templates)


def instruction(rng: random.Random) -> tuple[str, str]:
    """(description, kind of its first part): one instruction, and half the time a second of
    another kind, in a frame."""
    kinds = rng.sample(KINDS, 2 if rng.random() < 0.5 else 1)
    text = " ".join(_one(rng, k) for k in kinds)
    return rng.choice(_FRAMES).format(x=text), kinds[0]


def make_record(seed: int, index: int, replies: list[dict], guidance: float) -> dict:
    """Record `index` of run `seed`: an instruction as the text, ordinary prompts (half of them
    short questions where the pool has them, as task records) and the base model's own replies as
    answers, which the edits objective then scores by KL alone (`distill`); depends on (seed, index) only."""
    rng = random.Random(f"d2l-instruction:{seed}:{index}")
    text, kind = instruction(rng)
    return {"id": f"instruction-{seed}-{index:06d}", "genre": f"instruction:{kind}", "text": text,
            "qa": [{"q": r["prompt"], "a": r["reply"]} for r in pick_replies(rng, replies)],
            "distill": True, "guidance": guidance}
