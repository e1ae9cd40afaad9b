#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the report's browser test, where this machine allows it
# (root or password-less sudo, apt-get). Where it does not, it says so and the browser test is skipped.
set -u
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
    echo "note: no apt-get here; the browser test will be skipped (install chromium and chromedriver to run it)"; exit 0
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo_cmd="sudo -n"; else
        echo "note: not root and no password-less sudo; the browser test will be skipped (apt-get install chromium chromium-driver to run it)"
        exit 0
    fi
fi
echo "installing Debian's chromium and chromium-driver for the report's browser test"
if ! { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    echo "note: apt-get could not install chromium; the browser test will be skipped"
fi
exit 0
