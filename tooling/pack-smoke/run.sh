#!/usr/bin/env bash
# Installs packed @guidekit tarballs into an empty project outside the workspace with plain npm and runs
# smoke.mjs there: exactly what a user of the published packages does. Usage: run.sh <dir with *.tgz>
set -euo pipefail
packdir=$1
here=$(cd "$(dirname "$0")" && pwd)
project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT
cd "$project"
npm init -y >/dev/null
# onnxruntime-node's install script downloads CUDA files; the CPU binaries ship in the package.
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error "$packdir"/*.tgz
cp "$here/smoke.mjs" .
node smoke.mjs
