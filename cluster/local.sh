#!/usr/bin/env bash
# Start or stop a local multi-node Ray cluster on loopback (127.0.0.2), token auth on, dashboard off.
#   cluster/local.sh start [--nodes 2] [--cpus-per-node 1] [--folder .ray-cluster]
#   eval "$(cluster/local.sh env)"            # token auth for this shell's drivers
#   prunelab sweep sweeps/demo.yaml --address 127.0.0.2:PORT
#   cluster/local.sh stop
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" -m prunelab cluster "$@"
