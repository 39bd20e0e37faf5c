#!/usr/bin/env bash
# System packages the tests need that pip cannot bring: Debian's Chromium, which the
# browser test drives through Playwright (executable_path=/usr/bin/chromium, because
# Playwright's own browser download is not possible here), and Noto CJK fonts so that
# Chinese pages render in its screenshots instead of boxes. The field app's GUI tests
# (tests/gui) run a real Kivy window with SDL's offscreen driver: Kivy's wheel brings SDL2,
# but OpenGL comes from Mesa (libgl1, libegl1, libgles2, and libgl1-mesa-dri for the
# llvmpipe software renderer); the app draws Chinese with the same Noto CJK font.
#
# Idempotent: it installs only what is missing, so calling it before every test run
# costs one `command -v` and one `dpkg -s` when everything is there. Needs root (or
# sudo) on a Debian or Ubuntu machine; anywhere else it says so and exits non-zero.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
for package in libgl1 libegl1 libgles2 libgl1-mesa-dri; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: need ${missing[*]}, but this is not a Debian machine (no apt-get)" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install-system-deps: need root to install ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
command -v chromium >/dev/null 2>&1 || { echo "install-system-deps: chromium still missing" >&2; exit 1; }
for package in fonts-noto-cjk libgl1 libegl1 libgles2 libgl1-mesa-dri; do
    dpkg -s "$package" >/dev/null 2>&1 || { echo "install-system-deps: $package still missing" >&2; exit 1; }
done
