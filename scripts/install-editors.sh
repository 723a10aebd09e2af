#!/usr/bin/env bash
# Installs what the real-editor tests need, offline-safe (Debian apt + the npm registry only):
#   apt:   chromium, ripgrep, neovim, tmux, and the toolchain code-server's native modules build with
#   .editors/code-server   code-server (VS Code in the browser), scripted npm install on Node 20
#   node_modules/          the extension's npm dependencies (npm ci, from package-lock.json)
#   build/tlens-lsp.vsix    the VS Code extension (scripts/build-vsix.sh)
# Idempotent: each step is skipped when its version stamp or output is current. Fails loudly.
# Env: CODE_SERVER_VERSION (default 4.100.3, the newest release that runs on Node 20),
#      PYTHON (default .venv/bin/python; gets PyPI `playwright` if it lacks it, never a browser download).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CODE_SERVER_VERSION=${CODE_SERVER_VERSION:-4.100.3}
CS_DIR=$ROOT/.editors/code-server
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
APT_PACKAGES=(chromium ripgrep build-essential pkg-config libkrb5-dev neovim tmux)

say() { printf 'install-editors: %s\n' "$*"; }
die() { printf 'install-editors: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

# --- 1. apt packages (only the missing ones) -----------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install: ${missing[*]}"
        SUDO="sudo"
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "apt packages present: ${APT_PACKAGES[*]}"
fi
command -v chromium >/dev/null || die "chromium is not on PATH after the apt install"

# --- 2. Node 20 (code-server $CODE_SERVER_VERSION needs exactly Node 20) ---------------------------
command -v node >/dev/null && command -v npm >/dev/null \
    || die "node and npm are required (Node 20, e.g. from nodesource); Debian's nodejs 18 is too old"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" = 20 ] || die "code-server $CODE_SERVER_VERSION needs Node 20, found $(node --version)"
# node-gyp builds code-server's native modules against these headers instead of downloading them.
NODE_PREFIX=$(dirname "$(dirname "$(node -p 'process.execPath')")")
[ -f "$NODE_PREFIX/include/node/node_version.h" ] \
    || die "Node headers missing at $NODE_PREFIX/include/node (node-gyp would try to download them)"

# --- 3. code-server -----------------------------------------------------------------------------
CS_STAMP="code-server $CODE_SERVER_VERSION node $(node --version)"
if [ -f "$CS_DIR/.installed" ] && [ "$(cat "$CS_DIR/.installed")" = "$CS_STAMP" ]; then
    say "code-server present: $CS_STAMP ($CS_DIR)"
else
    say "installing code-server $CODE_SERVER_VERSION into $CS_DIR (scripted npm install, ~1 min)"
    started=$SECONDS
    rm -rf "$CS_DIR" && mkdir -p "$CS_DIR"
    (
        cd "$CS_DIR"
        export npm_config_nodedir=$NODE_PREFIX npm_config_yes=true npm_config_fund=false npm_config_audit=false
        printf '{"name":"tlens-editors","private":true}\n' > package.json
        # Its postinstall would fetch ripgrep from GitHub, so fetch without scripts and redo the
        # postinstall by hand (same steps as code-server's ci/build/npm-postinstall.sh).
        npm install --no-save --ignore-scripts "code-server@$CODE_SERVER_VERSION"
        npm rebuild argon2
        cd node_modules/code-server/lib/vscode
        npm install --omit=dev --ignore-scripts
        mkdir -p node_modules/@vscode/ripgrep/bin
        cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg   # its postinstall skips when bin/ exists
        npm rebuild                                                 # kerberos, node-pty, spdlog, watcher, ...
        ln -sfn node_modules node_modules.asar
        (cd bin/remote-cli && ln -sfn code-linux.sh code-server)
        (cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
        (cd extensions && npm install --omit=dev)
    )
    "$CS_DIR/node_modules/.bin/code-server" --version >/dev/null || die "the installed code-server does not run"
    echo "$CS_STAMP" > "$CS_DIR/.installed"
    say "code-server installed in $((SECONDS - started)) s"
fi

# --- 4. the extension's npm dependencies ----------------------------------------------------------
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f node_modules/.tlens-lock.sha256 ] && [ "$(cat node_modules/.tlens-lock.sha256)" = "$LOCK_SUM" ]; then
    say "extension npm dependencies present (package-lock.json unchanged)"
else
    say "npm ci (extension dependencies from package-lock.json)"
    npm ci --no-fund --no-audit
    echo "$LOCK_SUM" > node_modules/.tlens-lock.sha256
fi

# --- 5. the .vsix -----------------------------------------------------------------------------
VSIX=build/tlens-lsp.vsix
if [ -f "$VSIX" ] && [ -z "$(find package.json tsconfig.json .vscodeignore extension -newer "$VSIX" -type f | head -n1)" ]; then
    say "$VSIX is up to date"
else
    say "building $VSIX"
    scripts/build-vsix.sh
fi

# --- 6. PyPI playwright for the tests (drives the system chromium; no browser download) ----------
if [ -x "$PYTHON" ]; then
    if "$PYTHON" -c 'import playwright' 2>/dev/null; then
        say "playwright present in $PYTHON"
    else
        say "pip install playwright into $PYTHON"
        "$PYTHON" -m pip install -q 'playwright>=1.50'
    fi
else
    say "no $PYTHON yet; the test environment (make) installs playwright with the [test] extra"
fi

say "ready: code-server $CS_DIR/node_modules/.bin/code-server, chromium $(command -v chromium), nvim $(command -v nvim), $VSIX"
