"""List the verdict each study notebook printed ("Verdict on this model: X.") as CSV.

    verdicts.py NOTEBOOK... [--expect "does not replicate"] [--out FILE]

With --expect, exit 1 when a notebook printed no verdict or a main verdict other than the one
expected: the negative control (a random-init checkpoint must not replicate any finding).
"""
import argparse
import json
import os
import re
import sys

VERDICT = re.compile(r"Verdict on this model: (replicates|partly|does not replicate)\.")


def main_verdict(path):
    nb = json.load(open(path))
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/markdown") or ""
            m = VERDICT.search("".join(text) if isinstance(text, list) else text)
            if m:
                return m.group(1)
    return None


def run():
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--expect")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = [(os.path.basename(p), main_verdict(p)) for p in sorted(a.notebooks)]
    text = "notebook,verdict\n" + "".join(f"{n},{v or 'none'}\n" for n, v in rows)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        open(a.out, "w").write(text)
    sys.stdout.write(text)
    bad = [n for n, v in rows if v is None or (a.expect and v != a.expect)]
    if bad:
        print(f"verdicts differ from {a.expect!r}: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
