#!/usr/bin/env bash
# Opens JupyterLab on notebooks/ with the tslab (TypeScript) kernel: `npm run lab` (builds lib first).
# Extra arguments go to `jupyter lab`, e.g. `npm run lab -- --port 8890 --no-browser`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JUPYTER="$ROOT/.venv/bin/jupyter"
if [ ! -x "$JUPYTER" ] || ! "$JUPYTER" kernelspec list 2>/dev/null | grep -q "^ *tslab "; then
  echo "JupyterLab with the tslab kernel is not set up: run \`npm run setup\` (bash scripts/setup.sh) first" >&2
  exit 1
fi
# The project's lab settings (labconfig/default_setting_overrides.json): never ask about or fetch
# Jupyter news, never check for updates (these machines often have no network).
export JUPYTER_CONFIG_PATH="$ROOT/scripts/notebooks/jupyter-config${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
args=(--LabApp.news_url= --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate)
[[ " $* " == *root_dir* ]] || args+=(--ServerApp.root_dir="$ROOT/notebooks")  # unless given
[ "$(id -u)" -eq 0 ] && args+=(--allow-root)              # Jupyter refuses root without it
[ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && args+=(--no-browser)  # no screen: print the URL only
exec "$JUPYTER" lab "${args[@]}" "$@"
