#!/usr/bin/env bash
# The web UI's tests drive Debian's Chromium (never a browser downloaded by Playwright): install it when missing.
set -euo pipefail
CHROMIUM="${KONSILIUM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the web UI tests need Chromium at $CHROMIUM (no apt-get here: install it, or set KONSILIUM_CHROMIUM)" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "error: the web UI tests need Chromium: run 'apt-get install chromium' as root (no sudo here)" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
echo "installing Debian's chromium for the web UI tests"
if ! { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
  --no-install-recommends chromium; }; then
  echo "error: could not install chromium with apt-get; install it yourself (apt-get install chromium)" >&2
  exit 1
fi
