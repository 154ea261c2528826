#!/usr/bin/env python3
"""Re-execute the project's notebooks headlessly in the tslab kernel, with Jupyter's nbclient.

    .venv/bin/python scripts/notebooks/run_notebooks.py [--out-dir DIR] [NOTEBOOK ...]

Without arguments, runs notebooks/*.ipynb in name order. Each notebook runs in a fresh kernel
with cwd = its own folder (as JupyterLab does). Prints one line per notebook and per code cell
(index, first source line, seconds). On the first failing cell it prints the notebook, the cell
number, the head of its source and the error, leaves that notebook's file untouched and exits 1.

On success the notebook's outputs are replaced whole: the new notebook is written to a temporary
file next to it and renamed over it (never half-written), then signed as trusted for this user
(`jupyter trust`), so JupyterLab renders its Plotly outputs. Outputs are normalised so that two
runs of the same code give identical files: no execution timestamps, stream outputs coalesced,
missing cell ids made deterministic.

With --out-dir DIR the executed notebooks are written to DIR (same file names) and the
notebooks themselves are left as they are (e.g. a run on another model: PARENLENS_MODEL,
PARENLENS_RESULTS_DIR and PARENLENS_FIGURES_DIR send its outputs elsewhere too); the kernel still
runs with cwd = the notebook's own folder.

Progress lines of long library calls (stderr text starting with "[progress]", see
lib/src/notebook/progress.ts) are echoed to this terminal, updating in place, and kept out of the
saved notebook: they hold timings, which change every run.

Ctrl-C (SIGINT) or SIGTERM stops at once: the kernel is killed, the notebook being run is left as
it was, and the script prints "interrupted, <notebook> left as it was" and exits 130, without
tracebacks. (Files the notebook's cells had already written are each complete, old or new.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat.sign import NotebookNotary
from jupyter_client.kernelspec import NoSuchKernel

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SOURCE_HEAD_LINES = 12
PROGRESS_MARKER = "[progress]"  # lib/src/notebook/progress.ts


def first_line(source: str, width: int = 48) -> str:
    for line in source.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= width else line[: width - 1] + "…"
    return ""


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Reads a notebook, giving cells without an id a deterministic one (nbformat would pick random ids)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if (raw.get("nbformat"), raw.get("nbformat_minor", 0)) >= (4, 5):
        for i, cell in enumerate(raw.get("cells", [])):
            cell.setdefault("id", f"cell-{i}")
    return nbformat.reads(json.dumps(raw), as_version=4)  # joins multi-line sources, validates


def normalise(nb: nbformat.NotebookNode) -> None:
    """Drops what changes from run to run without the code or the data changing."""
    for cell in nb.cells:
        for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            for out in cell.outputs:
                out.pop("transient", None)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)


class Interrupted(Exception):
    """SIGINT / SIGTERM while a notebook ran."""


def kill_kernel(client: NotebookClient) -> None:
    """Kills the kernel's process group (jupyter_client starts kernels in their own session)."""
    provisioner = getattr(client.km, "provisioner", None) if client.km is not None else None
    process = getattr(provisioner, "process", None)
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()


def execute_interruptibly(client: NotebookClient) -> None:
    """client.execute() in a worker thread, so that SIGINT reaches this (main) thread as
    KeyboardInterrupt (nbclient only installs its own signal handlers on the main thread)."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            client.execute()
        except BaseException as error:  # re-raised in the main thread
            failure.append(error)

    worker = threading.Thread(target=work, name="nbclient", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        kill_kernel(client)
        raise Interrupted() from None
    if failure:
        raise failure[0]


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class Progress:
    """nbclient hooks that print one line per code cell."""

    def __init__(self, nb: nbformat.NotebookNode) -> None:
        self.code_indices = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        self.started = 0.0
        self.current: int | None = None  # index into nb.cells of the cell being run

    def number(self, cell_index: int) -> int:
        return self.code_indices.index(cell_index) + 1

    def on_cell_execute(self, cell, cell_index, **_):
        self.current = cell_index
        self.started = time.monotonic()
        print(f"  cell {self.number(cell_index):>2}/{len(self.code_indices)}  {first_line(cell.source):<48}", end="", flush=True)

    def on_cell_executed(self, cell, cell_index, execute_reply=None, **_):
        status = (execute_reply or {}).get("content", {}).get("status", "ok")
        print(f"  {time.monotonic() - self.started:7.2f} s{'' if status == 'ok' else '  ' + status.upper()}", flush=True)


def print_failure(path: Path, nb: nbformat.NotebookNode, progress: Progress, error: BaseException) -> None:
    if progress.current is not None and progress.started and not isinstance(error, CellExecutionError):
        print(f"  {time.monotonic() - progress.started:7.2f} s  FAILED", flush=True)
    print(f"\nFAILED: {shown(path)}", file=sys.stderr)
    if progress.current is not None:
        cell = nb.cells[progress.current]
        print(
            f"cell {progress.number(progress.current)} of {len(progress.code_indices)} code cells "
            f"(cell index {progress.current} in the notebook); its source begins:",
            file=sys.stderr,
        )
        lines = cell.source.splitlines()
        for line in lines[:SOURCE_HEAD_LINES]:
            print(f"    | {line}", file=sys.stderr)
        if len(lines) > SOURCE_HEAD_LINES:
            print(f"    | … ({len(lines) - SOURCE_HEAD_LINES} more lines)", file=sys.stderr)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            for out in errors:
                print(f"{out.get('ename', 'Error')}: {ANSI.sub('', out.get('evalue', ''))}", file=sys.stderr)
                tb = "\n".join(ANSI.sub("", line) for line in out.get("traceback", []))
                if tb.strip():
                    print(tb, file=sys.stderr)
            return
    if isinstance(error, CellTimeoutError):
        print(f"timeout: {error}", file=sys.stderr)
    elif isinstance(error, DeadKernelError):
        print(f"the kernel died: {error}", file=sys.stderr)
    else:
        print(f"{type(error).__name__}: {ANSI.sub('', str(error))}", file=sys.stderr)


def is_progress(msg: dict) -> bool:
    """A stderr stream message holding only progress text (lines that start with the marker)."""
    if msg.get("msg_type") != "stream" or msg.get("content", {}).get("name") != "stderr":
        return False
    parts = [p for p in re.split(r"[\r\n]", msg["content"].get("text", "")) if p]
    return bool(parts) and all(p.startswith(PROGRESS_MARKER) for p in parts)


class ProgressEchoingClient(NotebookClient):
    """nbclient that shows progress lines in this terminal (in place) instead of saving them."""

    def output(self, outs, msg, display_id, cell_index):
        if is_progress(msg):
            text = msg["content"]["text"].replace(PROGRESS_MARKER + " ", "    ")
            sys.stdout.write(text)
            sys.stdout.flush()
            return None
        return super().output(outs, msg, display_id, cell_index)


def run_one(path: Path, position: str, timeout: int, kernel: str | None, out_dir: Path | None = None) -> bool:
    nb = read_notebook(path)
    before = path.read_bytes()
    kernel_name = kernel or nb.metadata.get("kernelspec", {}).get("name") or "tslab"
    progress = Progress(nb)
    print(f"{position} {shown(path)}  ({len(progress.code_indices)} code cells, kernel {kernel_name})", flush=True)
    for cell in nb.cells:  # outputs are replaced whole, never merged
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = ProgressEchoingClient(
        nb,
        kernel_name=kernel_name,
        timeout=timeout,
        startup_timeout=120,
        record_timing=False,
        coalesce_streams=True,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_execute=progress.on_cell_execute,
        on_cell_executed=progress.on_cell_executed,
    )
    started = time.monotonic()
    try:
        execute_interruptibly(client)
    except Interrupted:
        raise
    except NoSuchKernel:
        print(f"\nFAILED: {shown(path)}: no Jupyter kernel named {kernel_name!r} "
              "(run `npm run setup` to register tslab)", file=sys.stderr)
        return False
    except Exception as error:  # a cell error, a timeout, a dead kernel, a kernel that did not start
        print_failure(path, nb, progress, error)
        print(f"{shown(path)} was left as it was.", file=sys.stderr)
        return False
    normalise(nb)
    if path.read_bytes() != before:
        print(f"\nFAILED: {shown(path)} changed on disk while it ran (saved from JupyterLab?); not overwriting it.", file=sys.stderr)
        return False
    text = nbformat.writes(nb)
    target = path if out_dir is None else out_dir / path.name
    write_atomic(target, text if text.endswith("\n") else text + "\n")
    NotebookNotary().sign(nb)  # as `jupyter trust`: JupyterLab shows its outputs as trusted
    where = "" if out_dir is None else f" to {shown(target)}"
    print(f"  done in {time.monotonic() - started:.1f} s, written{where} and trusted", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb in name order)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("NOTEBOOK_CELL_TIMEOUT", "1200")),
                    help="seconds one cell may run (default 1200, or $NOTEBOOK_CELL_TIMEOUT)")
    ap.add_argument("--kernel", default=None, help="kernel name (default: the notebook's kernelspec, else tslab)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="write the executed notebooks here instead of over the notebooks (created if needed)")
    args = ap.parse_args(argv)
    if args.out_dir is not None:
        args.out_dir = args.out_dir.resolve()
        args.out_dir.mkdir(parents=True, exist_ok=True)

    paths = args.notebooks or sorted(DEFAULT_DIR.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks found in {shown(DEFAULT_DIR)}", file=sys.stderr)
        return 2
    missing = [p for p in paths if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print("not a notebook file: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 2

    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    started = time.monotonic()
    for i, path in enumerate(paths):
        try:
            ok = run_one(path.resolve(), f"[{i + 1}/{len(paths)}]", args.timeout, args.kernel, args.out_dir)
        except (Interrupted, KeyboardInterrupt):
            print(f"\ninterrupted, {shown(path)} left as it was", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(130)  # no atexit kernel clean-up (the kernel is killed), no tracebacks
        if not ok:
            return 1
    print(f"All {len(paths)} notebook(s) ran in {time.monotonic() - started:.1f} s.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
