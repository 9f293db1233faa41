#!/usr/bin/env python3
"""Writes a deterministic JSONL request log of mixed fields, for measuring `sigma pack` at scale.

Usage: scripts/gen-mixed-jsonl.py BYTES OUT [CORPUS_DIR]

Every line is one event of an LLM request log: a request id, a conversation id, an ISO timestamp
(increasing), a role, a model name, token counts, a latency, sometimes a tool call (its arguments a
JSON string, as APIs log them), and a text: a message of chat-train.jsonl from the development
corpus (its `text` field), or, every fourth line, a request body holding the conversation so far as
a JSON string (double escaping, as request logs have it). About 1 line in 50 is written by Python's
json.dumps default (ensure_ascii); the others are minimal JSON (ensure_ascii=False), as serde_json
writes. The same BYTES and corpus give the same file: the generator draws from random.Random(14).
Without the corpus it makes synthetic text from a fixed vocabulary.
"""
import json
import os
import random
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    target = int(float(sys.argv[1]))
    out_path = sys.argv[2]
    corpus = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "corpus")
    rng = random.Random(14)
    texts = []
    train = os.path.join(corpus, "chat-train.jsonl")
    if os.path.exists(train):
        with open(train, encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
    if not texts:
        words = ("the model request token stream record archive latency user assistant "
                 "function returns value error config server client cache build test").split()
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 300)))
                 for _ in range(5000)]
    models = ["gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "llama-3.1-70b-instruct",
              "mistral-large-2407", "gemini-1.5-pro-002"]
    tools = ["search", "read_file", "run_python", "get_weather", "sql_query"]
    roles = ["user", "assistant", "tool", "system"]
    t = 1_733_500_000.0
    written = 0
    n = 0
    conversations = {}
    with open(out_path, "w", encoding="utf-8", newline="\n") as out:
        while written < target:
            cid = "conv-%06d" % rng.randrange(20000)
            history = conversations.setdefault(cid, [])
            role = roles[0] if not history else rng.choice(roles[:3])
            text = rng.choice(texts)
            t += rng.expovariate(50.0)
            event = {
                "id": "req-%09d" % n,
                "conversation": cid,
                "ts": "%s.%03dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
                                    int(t * 1000) % 1000),
                "role": role,
                "model": rng.choice(models),
                "usage": {"prompt_tokens": rng.randint(5, 8000),
                          "completion_tokens": rng.randint(1, 2000)},
                "latency_ms": round(rng.lognormvariate(6.0, 0.8), 1),
            }
            if role == "assistant" and rng.random() < 0.2:
                event["tool_calls"] = [{
                    "id": "call_%08x" % rng.getrandbits(32),
                    "type": "function",
                    "function": {"name": rng.choice(tools), "arguments": json.dumps(
                        {"query": text[:80], "limit": rng.randint(1, 50)})},
                }]
            if n % 4 == 3:
                body = {"model": event["model"], "messages": history[-6:] + [
                    {"role": role, "content": text}]}
                event["text"] = json.dumps(body, ensure_ascii=False)
            else:
                event["text"] = text
            history.append({"role": role, "content": text[:2000]})
            if len(history) > 12:
                del history[:6]
            line = json.dumps(event, ensure_ascii=(n % 50 == 49)) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            n += 1
    print(f"{out_path}: {n} lines, {written} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
