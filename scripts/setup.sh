#!/usr/bin/env bash
# Set up parenlens on a Debian machine (run as root, from anywhere; idempotent):
#   - Debian's Chromium and fonts (headless rendering of figures, JupyterLab screenshot)
#   - Python venv .venv with Jupyter (scripts/notebooks/requirements.txt); with --training also
#     the model-building tools of scripts/model/requirements.txt (torch, transformers, ...)
#   - npm packages (`npm ci`, only when node_modules is missing or does not match the lock file,
#     or with --force-npm-ci: `npm ci` deletes node_modules first)
#   - the library build (`npm run build`)
#   - the tslab kernel registered with the venv's Jupyter (`jupyter kernelspec list` shows tslab)
#   - with --bench: the peer tools of `npm run bench -- --peers` in their own git-ignored venvs,
#     .venv-bench (transformers + TransformerLens 4, scripts/bench/requirements-bench.txt) and
#     .venv-bench-tl3 (TransformerLens 3 HookedTransformer, requirements-bench-tl3.txt)
# Only the package registries are used (Debian, PyPI, npm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TRAINING=0
BENCH=0
FORCE_NPM_CI=0
for arg in "$@"; do
  case "$arg" in
    --training) TRAINING=1 ;;
    --bench) BENCH=1 ;;
    --force-npm-ci) FORCE_NPM_CI=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (known: --training, --bench, --force-npm-ci)" >&2; exit 2 ;;
  esac
done

step() { echo; echo "=== setup: $* ==="; }
START=$SECONDS

step "Debian packages (chromium, fonts)"
APT_PACKAGES=(chromium fonts-liberation fonts-dejavu-core)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; run this script as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "installed: ${missing[*]}"
else
  echo "already installed: ${APT_PACKAGES[*]}"
fi
/usr/bin/chromium --version 2>/dev/null | grep -i chromium

step "Python venv .venv"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/notebooks/requirements.txt
if [ "$TRAINING" = 1 ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/model/requirements.txt
fi
.venv/bin/python -c "import nbclient, nbformat, jupyterlab, plotly; print('nbclient', nbclient.__version__, '| jupyterlab', jupyterlab.__version__, '| plotly', plotly.__version__)"

if [ "$BENCH" = 1 ]; then
  step "benchmark peers (.venv-bench, .venv-bench-tl3)"
  for v in bench:requirements-bench.txt bench-tl3:requirements-bench-tl3.txt; do
    dir=".venv-${v%%:*}"
    [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "scripts/bench/${v#*:}"
  done
  .venv-bench/bin/python -c "import transformers, transformer_lens.model_bridge; print('transformers', transformers.__version__)"
  .venv-bench-tl3/bin/python -c "from transformer_lens import HookedTransformer; print('TransformerLens 3 HookedTransformer ok')"
fi

step "npm packages"
# `npm ls` fails when node_modules is missing or does not satisfy package.json / the lock file.
if [ "$FORCE_NPM_CI" = 1 ] || [ ! -d node_modules ] || ! npm ls --all >/dev/null 2>&1; then
  npm ci --no-fund --no-audit
else
  echo "node_modules already matches package-lock.json (use --force-npm-ci to reinstall)"
fi

step "build lib (npm run build)"
npm run --silent build

step "tslab kernel"
# Registered into the venv (--sys-prefix), pointing at this checkout's tslab.
npx --no-install tslab install --python="$ROOT/.venv/bin/python" --sys-prefix --binary="$ROOT/node_modules/tslab/bin/tslab" >/dev/null
.venv/bin/jupyter kernelspec list
.venv/bin/jupyter kernelspec list | grep -q "^ *tslab " || { echo "tslab kernel not registered" >&2; exit 1; }

echo
echo "=== setup done in $((SECONDS - START)) s ==="
