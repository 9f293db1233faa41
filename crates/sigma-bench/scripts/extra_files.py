#!/usr/bin/env python3
"""Builds the three extra files of `sigma-bench anchors` (README "Anchors, one run") from what the
machine image has, deterministically (sorted paths, no timestamps): JSONL, one JSON object a line,
each with a `text` field and one or two others.

  python-stdlib.jsonl  every top-level .py of CPython 3.11's standard library, cut into chunks of
                       at most 4 KiB at blank lines (as the corpus's code-dev.jsonl): {id, file, text}
  man-pages.jsonl      the roff source of every man page in sections 5 and 8 (gzip-decoded), cut the
                       same way at blank lines or paragraph macros: {id, page, text}
  aws-json.jsonl       botocore's ec2 and sagemaker service models (as bundled by the Google Cloud
                       CLI): one record per operation and per shape, `text` = that object as JSON
                       with 2-space indents: {id, service, text}

Usage: extra_files.py OUT_DIR  (a source that is missing is skipped with a message).
"""

import glob
import gzip
import json
import os
import sys

CHUNK = 4096
PYTHON_LIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
MAN_SECTIONS = ["/usr/share/man/man5", "/usr/share/man/man8"]
BOTOCORE = "/usr/lib/google-cloud-sdk/lib/third_party/botocore/data"
SERVICES = [("ec2", "2016-11-15"), ("sagemaker", "2017-07-24")]
# roff requests that start a paragraph or section: a chunk may end before them.
ROFF_BREAKS = (".SH", ".SS", ".PP", ".P\n", ".LP", ".TP", ".IP", ".sp", ".Sh", ".Ss", ".Pp")


def utf8_cut(data: bytes, limit: int) -> int:
    """The largest cut point <= limit that does not split a UTF-8 sequence."""
    cut = min(limit, len(data))
    while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut or limit


def chunks(text: str, breaks=()):
    """Cuts text into pieces of at most CHUNK UTF-8 bytes, each ending just before a blank line
    or a line starting with one of `breaks` where it can (the last such point that fits), else at
    a line end, else (a line longer than CHUNK) inside the line."""
    lines = text.encode("utf-8").splitlines(keepends=True)
    out, cur, last_break = [], b"", 0
    for line in lines:
        while len(line) > CHUNK:  # a very long line: flush, then cut it hard
            if cur:
                out.append(cur)
                cur, last_break = b"", 0
            cut = utf8_cut(line, CHUNK)
            out.append(line[:cut])
            line = line[cut:]
        if len(cur) + len(line) > CHUNK:
            cut = last_break or len(cur)
            out.append(cur[:cut])
            cur, last_break = cur[cut:], 0
        is_break = line.strip() == b"" or line.decode("utf-8", "replace").startswith(breaks)
        if is_break and cur:
            last_break = len(cur)
        cur += line
    if cur:
        out.append(cur)
    return [c.decode("utf-8") for c in out]


def write(path, records):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path}: {len(records)} records, {os.path.getsize(path)} bytes", file=sys.stderr)


def python_stdlib():
    records = []
    for path in sorted(glob.glob(os.path.join(PYTHON_LIB, "*.py"))):
        name = "python3.11/" + os.path.basename(path)
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        for k, piece in enumerate(chunks(text)):
            records.append({"id": f"{name}#{k}", "file": name, "text": piece})
    return records


def man_pages():
    records = []
    for section in MAN_SECTIONS:
        for path in sorted(glob.glob(os.path.join(section, "*.gz"))):
            if os.path.islink(path):
                continue
            with gzip.open(path) as f:
                text = f.read().decode("utf-8", "replace")
            base = os.path.basename(path)[: -len(".gz")]
            page = "{}({})".format(*base.rsplit(".", 1)) if "." in base else base
            name = os.path.basename(section) + "/" + base
            for k, piece in enumerate(chunks(text, ROFF_BREAKS)):
                records.append({"id": f"{name}#{k}", "page": page, "text": piece})
    return records


def aws_json():
    records = []
    for service, version in SERVICES:
        path = os.path.join(BOTOCORE, service, version, "service-2.json")
        with open(path, encoding="utf-8") as f:
            model = json.load(f)
        for kind in ("operations", "shapes"):
            for name, value in model[kind].items():
                text = json.dumps(value, indent=2, ensure_ascii=False)
                records.append({"id": f"{service}.{kind}.{name}", "service": service, "text": text})
    return records


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, build, source in [
        ("python-stdlib.jsonl", python_stdlib, PYTHON_LIB),
        ("man-pages.jsonl", man_pages, MAN_SECTIONS[0]),
        ("aws-json.jsonl", aws_json, BOTOCORE),
    ]:
        if not os.path.isdir(source):
            print(f"{name}: skipped, {source} not found", file=sys.stderr)
            continue
        write(os.path.join(out, name), build())


if __name__ == "__main__":
    main()
