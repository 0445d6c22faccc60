#!/usr/bin/env bash
# The local EVM the on-chain tests run against, from the npm registry (no Docker, no GitHub downloads):
# - Foundry's anvil, pinned, from @foundry-rs/anvil (its platform package carries the binary; scripts not run);
# - Uniswap's compiled contracts, pinned, taken out of the npm tarballs (`npm pack`, checksums verified) without
#   installing their dependency trees. They are Uniswap's code: kept outside the clone, never committed.
# - the project's own test contracts (tests/contracts), compiled with solc-js from npm.
# Idempotent: skips what is already there. Prints the directory to use as HYPEFLOW_EVM_DIR.
set -euo pipefail
DIR="${HYPEFLOW_EVM_DIR:-$HOME/.cache/hypeflow-evm}"
ANVIL_VERSION=1.7.1
mkdir -p "$DIR/artifacts"
if ! "$DIR/bin/anvil" --version 2>/dev/null | grep -q "Version: $ANVIL_VERSION"; then
  echo "== installing anvil $ANVIL_VERSION from npm" >&2
  npm install --prefix "$DIR/npm" --ignore-scripts --no-save --no-audit --no-fund --loglevel=error \
    "@foundry-rs/anvil@$ANVIL_VERSION" >&2
  mkdir -p "$DIR/bin"
  ln -sf "$DIR/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" "$DIR/bin/anvil"
  "$DIR/bin/anvil" --version >&2
fi
# package@version sha256 and the files wanted from it
fetch() {
  local pkg="$1" sum="$2"; shift 2
  local stamp="$DIR/artifacts/.$(echo "$pkg" | tr '/@' '__')"
  [ -f "$stamp" ] && return 0
  echo "== fetching $pkg artifacts from npm" >&2
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>&1)
  local tgz; tgz="$(ls "$tmp"/*.tgz)"
  echo "$sum  $tgz" | sha256sum -c --quiet - >&2
  for f in "$@"; do
    tar -xzf "$tgz" -C "$tmp" "package/$f"
    cp "$tmp/package/$f" "$DIR/artifacts/$(basename "$f")"
  done
  rm -rf "$tmp"
  touch "$stamp"
}
fetch @uniswap/v3-core@1.0.1 141b001e2a376fff867cb24e0713b2834095cb1250c13aae263d9a646446d329 \
  artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json
fetch @uniswap/v3-periphery@1.4.4 7177174c4b8c66bd1d61e7c4127ee15e95f851edfb1a65ee8225b6ab4f818bd7 \
  artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json
fetch @uniswap/swap-router-contracts@1.3.1 efad19ccb35c90338981f06ef7acc6daa5cce7a8139611167270eb7b2a1e26df \
  artifacts/contracts/SwapRouter02.sol/SwapRouter02.json artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json
fetch @uniswap/v2-periphery@1.1.0-beta.0 c3f1cda4ee1e00e877eb15ab508e574dfd6ae5e742be97fef41105d84a198784 \
  build/WETH9.json build/ERC20.json build/DeflatingERC20.json
# The project's own test contracts (a taxed / honeypot token), compiled with solc-js from npm (pinned; the
# compiler is JavaScript and WebAssembly, no download at compile time). Recompiled when a source changes.
SOLC_VERSION=0.8.26
if [ ! -f "$DIR/solc/node_modules/solc/package.json" ] || ! grep -q "\"version\": \"$SOLC_VERSION\"" "$DIR/solc/node_modules/solc/package.json"; then
  echo "== installing solc-js $SOLC_VERSION from npm" >&2
  npm install --prefix "$DIR/solc" --ignore-scripts --no-save --no-audit --no-fund --loglevel=error "solc@$SOLC_VERSION" >&2
fi
# ethers v6 (pinned), only to write keystores the way another tool does for the keystore test.
ETHERS_VERSION=6.16.0
if [ ! -f "$DIR/ethers/node_modules/ethers/package.json" ] || ! grep -q "\"version\": \"$ETHERS_VERSION\"" "$DIR/ethers/node_modules/ethers/package.json"; then
  echo "== installing ethers $ETHERS_VERSION from npm" >&2
  npm install --prefix "$DIR/ethers" --ignore-scripts --no-save --no-audit --no-fund --loglevel=error "ethers@$ETHERS_VERSION" >&2
fi
# puppeteer-core (pinned; it downloads no browser) drives Debian's chromium in the wallet-approval test.
PUPPETEER_VERSION=25.16.0
if [ ! -f "$DIR/puppeteer/node_modules/puppeteer-core/package.json" ] || ! grep -q "\"version\": \"$PUPPETEER_VERSION\"" "$DIR/puppeteer/node_modules/puppeteer-core/package.json"; then
  echo "== installing puppeteer-core $PUPPETEER_VERSION from npm" >&2
  npm install --prefix "$DIR/puppeteer" --ignore-scripts --no-save --no-audit --no-fund --loglevel=error "puppeteer-core@$PUPPETEER_VERSION" >&2
fi
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SUM="$(cat "$HERE"/tests/contracts/*.sol "$HERE/scripts/compile-contracts.js" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$DIR/artifacts/.own-contracts" 2>/dev/null)" != "$SUM" ]; then
  echo "== compiling tests/contracts" >&2
  NODE_PATH="$DIR/solc/node_modules" node "$HERE/scripts/compile-contracts.js" "$DIR/artifacts" "$HERE"/tests/contracts/*.sol >&2
  echo "$SUM" > "$DIR/artifacts/.own-contracts"
fi
echo "$DIR"
