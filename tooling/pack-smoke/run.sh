#!/usr/bin/env bash
# Installs packed @guidekit tarballs into an empty project outside the workspace with plain npm and runs
# there what a user runs: smoke.mjs (import every package, sample the toy model), then every TypeScript
# code block of every package README, type-checked strictly (strict, no skipLibCheck) and run as written.
# Each README's install line must name every package its snippets import (readme-snippets.mjs checks it).
# Usage: run.sh <dir with *.tgz>
set -euo pipefail
packdir=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT
cd "$project"
npm init -y >/dev/null
npm pkg set type=module
node "$here/readme-snippets.mjs" "$repo/packages" snippets > installs.txt
# What the READMEs install: @guidekit packages come from the tarballs, the rest (sharp, onnxruntime-node)
# from the registry, as for a user.
extra=$(tr ' ' '\n' < installs.txt | grep -v '^@guidekit/' | grep -v '^$' | tr '\n' ' ' || true)
# onnxruntime-node's install script downloads CUDA files; the CPU binaries ship in the package.
# shellcheck disable=SC2086
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error "$packdir"/*.tgz $extra typescript@5.9.3 @types/node@20.19.43
cp "$here/smoke.mjs" .
node smoke.mjs
# The onnx README's Stable Diffusion example reads ./stable-diffusion-v1-5-onnx: a random-weight miniature
# in the same diffusers layout stands in for a real export.
cp -r "$repo/packages/onnx/src/__fixtures__/sd-miniature" stable-diffusion-v1-5-onnx
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "target": "es2022",
    "types": ["node"],
    "rootDir": "snippets",
    "outDir": "out"
  },
  "include": ["snippets"]
}
JSON
npx tsc -p tsconfig.json
for f in out/*.mjs; do
  echo "README snippet: $(head -1 "$f" | sed 's|^// ||')"
  node "$f"
done
