"""Shared test data: chat-like records, made here (deterministic, no files needed)."""

import os
import random
import shutil

import pytest

_TOPICS = ["lists", "dicts", "async code", "SQL joins", "regular expressions", "Rust lifetimes"]
_ANSWERS = [
    "Use `items[::-1]` or `items.reverse()`; the first makes a copy.",
    "A dict comprehension does it: `{k: v for k, v in pairs}`.",
    "Await the coroutine inside an `async def`, or run it with `asyncio.run(main())`.",
    "An inner join keeps only the rows that match on both sides.",
    "Anchor the pattern with `^` and `$` so that it matches the whole line.",
    "The borrow must not outlive the value it points to.",
]


def chat_records(n, seed=0):
    """``n`` chat-like messages (str), some with non-ASCII text, deterministic in ``seed``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = rng.randrange(len(_TOPICS))
        if i % 2 == 0:
            out.append(f"User: how do I work with {_TOPICS[t]} in Python? (question {i})\n")
        else:
            extra = " Ça marche — 日本語もOK." if i % 7 == 0 else ""
            out.append(f"Assistant: {_ANSWERS[t]} Example {rng.randrange(1000)}.{extra}\n")
    return out


@pytest.fixture(scope="session")
def records():
    return chat_records(2000)


@pytest.fixture(scope="session")
def trained(records):
    import sigmalang

    return sigmalang.Codebook.train(records, level="fast")


def sigma_binary():
    """The `sigma` CLI, if built: $SIGMA_BIN or the workspace's target directory."""
    path = os.environ.get("SIGMA_BIN")
    if path and os.path.exists(path):
        return path
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for profile in ("release", "debug"):
        p = os.path.join(root, "target", profile, "sigma")
        if os.path.exists(p):
            return p
    return shutil.which("sigma")
