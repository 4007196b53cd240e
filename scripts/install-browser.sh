#!/bin/sh
# Install headless Chromium (Debian's `chromium` package) for the report's browser test.
# Idempotent: does nothing when a Chromium is already on the PATH (or at $CHROMIUM).
# Needs root or sudo; otherwise it says so and exits 1 (the browser test then skips, saying why).
set -eu

for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
    [ -n "$candidate" ] || continue
    if found=$(command -v "$candidate" 2>/dev/null); then
        echo "install-browser: chromium already installed: $found ($("$found" --version 2>/dev/null || echo 'version unknown'))"
        exit 0
    fi
done

if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    AS_ROOT="sudo -n"
else
    echo "install-browser: chromium is missing and cannot be installed: not root and no password-less sudo." >&2
    echo "install-browser: install it by hand (Debian/Ubuntu: 'sudo apt-get install -y chromium'); the browser test skips until then." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: chromium is missing and this system has no apt-get; install Chromium by hand" >&2
    echo "install-browser: (or point CHROMIUM at a Chromium/Chrome binary); the browser test skips until then." >&2
    exit 1
fi

echo "install-browser: installing chromium with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
if ! { $AS_ROOT apt-get update -qq && $AS_ROOT apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }; then
    echo "install-browser: apt-get could not install chromium (no network or no package?); the browser test skips until it is installed." >&2
    exit 1
fi
echo "install-browser: installed $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
