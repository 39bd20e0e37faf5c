#!/usr/bin/env bash
# System packages that pip cannot bring, for the tests (`make test`) or for the field app's window (`make app`).
#
#   bash scripts/install-system-deps.sh [test|app]      (test when not given)
#
# app, the field app on a desktop (also part of test, whose GUI tests run the app in an offscreen window):
#   * Mesa's OpenGL: libgl1, libegl1, libgles2, and libgl1-mesa-dri for the llvmpipe software renderer (Kivy's
#     wheel brings SDL2, not OpenGL);
#   * fonts-noto-cjk: Noto Sans CJK, whose Simplified Chinese face the app draws with (mobile/ui/fonts.py);
#   * libmtdev1 and xclip: Kivy probes its mtdev input provider and its xclip clipboard on Linux, and logs a
#     traceback for each when they are missing.
# test adds:
#   * Debian's Chromium, which the pages' browser test drives through Playwright (executable_path=/usr/bin/chromium,
#     because Playwright's own browser download is not possible here); it uses the same Noto CJK font so Chinese
#     pages render in its screenshots instead of boxes.
#
# Idempotent: it installs only what is missing, so calling it before every run costs one `command -v` and a few
# `dpkg -s` when everything is there. Needs root (or sudo) on a Debian or Ubuntu machine; anywhere else it says
# what is missing and exits non-zero.
set -euo pipefail

mode=${1:-test}
app_packages=(libgl1 libegl1 libgles2 libgl1-mesa-dri fonts-noto-cjk libmtdev1 xclip)
case "$mode" in
    app) packages=("${app_packages[@]}") ;;
    test) packages=("${app_packages[@]}" chromium) ;;
    *) echo "usage: $0 [test|app]" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: need ${missing[*]}, but this is not a Debian machine (no apt-get):" \
         "install their equivalents (OpenGL, Noto Sans CJK SC or WenQuanYi, mtdev, xclip, chromium)" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install-system-deps: need root to install ${missing[*]} (sudo bash $0 $mode)" >&2
        exit 1
    fi
fi

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || { echo "install-system-deps: $package still missing" >&2; exit 1; }
done
