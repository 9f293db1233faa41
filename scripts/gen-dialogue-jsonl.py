#!/usr/bin/env python3
"""Write a dialogue-like JSONL file (one {"speaker", "text"} object per line) to stdout.

A movie-script-like log where short lines recur in a mixed order: stock replies ("Yes.",
"Where are you going?"), scene headings and stage directions that come back, lines repeated
exactly, and near variants of earlier lines (a name or a number changed). Deterministic
(seeded), so measurements are reproducible: `python3 scripts/gen-dialogue-jsonl.py > dialogue.jsonl`.
Used to measure how much a repeated record costs in an archive (issue 13).
"""
import json
import random
import sys

rng = random.Random(13)
NAMES = ["ANNA", "BEN", "CLARA", "DAVID", "ELENA", "FRANK", "GRACE", "HENRY", "IRIS", "JACK"]
PLACES = ["KITCHEN", "OFFICE", "STREET", "CAR", "HOSPITAL", "BAR", "ROOFTOP", "HALLWAY"]
TIMES = ["DAY", "NIGHT", "MORNING", "LATER", "CONTINUOUS"]
STOCK = [
    "Yes.", "No.", "What?", "I don't know.", "Where are you going?", "We need to talk.",
    "Are you okay?", "I'm fine.", "Get out of here!", "Let's go.", "Wait for me.",
    "You can't be serious.", "Trust me.", "It's not what you think.", "Come with me.",
    "Not now.", "I told you already.", "Is anybody there?", "Hello?", "Thank you.",
]
WORDS = (
    "the a to of and in it is you that was for on with he be this have at but not they from "
    "one all by said there what we an were which do when your can if will up out so about then "
    "them would like him into time has look two more write go see number no way could people my "
    "than first water been call who its now find long down day did get come made may part over "
    "money gun door phone car night letter key window train plan boss doctor"
).split()


def fresh_line():
    n = rng.randint(3, 14)
    s = " ".join(rng.choice(WORDS) for _ in range(n))
    return s[0].upper() + s[1:] + rng.choice([".", ".", "?", "!", "..."])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
    said = []  # earlier dialogue lines, to repeat or vary
    for _ in range(n):
        r = rng.random()
        if r < 0.06:
            rec = {"speaker": "", "text": "INT. %s - %s" % (rng.choice(PLACES), rng.choice(TIMES))}
        elif r < 0.10:
            rec = {"speaker": "", "text": rng.choice(["CUT TO:", "FADE OUT.", "(beat)", "(pause)"])}
        else:
            who = rng.choice(NAMES)
            q = rng.random()
            if q < 0.30:
                text = rng.choice(STOCK)
            elif q < 0.55 and said:
                text = rng.choice(said[-2000:])  # an exact repeat of an earlier line
            elif q < 0.70 and said:
                base = rng.choice(said[-2000:])  # a near repeat: a name or a number changed
                text = base.rstrip(".?!") + rng.choice([", %s." % rng.choice(NAMES).title(),
                                                        " %d times." % rng.randint(2, 99), "?"])
            else:
                text = fresh_line()
            said.append(text)
            rec = {"speaker": who, "text": text}
        sys.stdout.write(json.dumps(rec) + "\n")


main()
