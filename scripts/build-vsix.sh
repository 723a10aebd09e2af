#!/usr/bin/env bash
# Builds the VS Code extension: type-check, bundle with esbuild, package with vsce -> build/tlens-lsp.vsix.
# Needs the npm dependencies (`npm ci`; scripts/install-editors.sh runs it).
# vsce walks every file under its working directory (.venv alone has tens of thousands), so it packages
# a staging copy of just the files that .vscodeignore lets into the .vsix: 1 s instead of 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/node_modules/.bin
STAGE=$ROOT/build/vsix
[ -x "$BIN/vsce" ] || { echo "build-vsix: node_modules is missing; run 'npm ci' (or scripts/install-editors.sh) first" >&2; exit 1; }

echo "build-vsix: type-check (tsc)"
"$BIN/tsc" --noEmit -p .
echo "build-vsix: bundle (esbuild) -> dist/extension.js"
npm run --silent bundle

echo "build-vsix: stage -> build/vsix"
rm -rf "$STAGE" && mkdir -p "$STAGE/dist" "$STAGE/extension/neovim"
cp package.json .vscodeignore "$STAGE/"
cp dist/extension.js "$STAGE/dist/"
cp -r extension/media "$STAGE/extension/"
cp extension/README.md "$STAGE/extension/"
cp extension/neovim/tlens.lua "$STAGE/extension/neovim/"

echo "build-vsix: package (vsce) -> build/tlens-lsp.vsix"
(cd "$STAGE" && "$BIN/vsce" package --no-dependencies --skip-license --allow-missing-repository \
    --readme-path extension/README.md --out "$ROOT/build/tlens-lsp.vsix")
ls -l build/tlens-lsp.vsix
