"""Measure the CPU training throughput of the committed recipe (for the model card's CPU estimate).

Runs train.py itself on the CPU (2 torch threads, OPENBLAS_NUM_THREADS=1, bf16 autocast) for
STEPS steps, logging every step, and appends to data/models/<name>/cpu_benchmark.json: per-step tokens/s,
their median and best quartile, the load average around the run (the machine is shared, so the
median is pessimistic), and the recipe's extrapolated CPU training time.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import MODEL_DIR, ROOT, WORK  # noqa: E402
from train import RECIPE  # noqa: E402

STEPS = 30


def main() -> None:
    out = os.path.join(WORK, "cpu-bench")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    load_before = os.getloadavg()
    log = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "model", "train.py"), "--device", "cpu",
                          "--threads", "2", "--out", out, "--steps", str(STEPS), "--log-every", "1",
                          "--eval-every", "1000000", "--save-every", "1000000"],
                         env=env, check=True, capture_output=True, text=True).stdout
    load_after = os.getloadavg()
    rates = [float(x) for x in re.findall(r"\} (\d+(?:\.\d+)?) tok/s", log)][2:]  # first steps warm up
    rates.sort()
    median = rates[len(rates) // 2]
    best_q = rates[(3 * len(rates)) // 4]
    tokens = RECIPE["steps"] * RECIPE["batch"] * RECIPE["seq"]
    res = {"steps_measured": len(rates), "tokens_per_step": RECIPE["batch"] * RECIPE["seq"],
           "threads": 2, "autocast": "bf16", "cpu_count": os.cpu_count(),
           "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
           "tokens_per_s_median": round(median), "tokens_per_s_best_quartile": round(best_q),
           "tokens_per_s_all": [round(r) for r in rates],
           "recipe_tokens": tokens,
           "extrapolated_hours_at_median": round(tokens / median / 3600, 2),
           "extrapolated_hours_at_best_quartile": round(tokens / best_q / 3600, 2)}
    res["nice"] = os.nice(0)
    # Each measurement is kept (the shared machine's load varies); the card shows them all.
    path = os.path.join(MODEL_DIR, "cpu_benchmark.json")
    runs = json.load(open(path))["runs"] if os.path.exists(path) else []
    runs.append(res)
    with open(path, "w") as fh:
        json.dump({"runs": runs}, fh, indent=1)
        fh.write("\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
