#!/usr/bin/env bash
# Installs what building and testing Countersign needs on a fresh Debian/Ubuntu machine.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# System packages: a C toolchain for ring, pkg-config; libudev-dev for the `authenticator`
# crate's USB HID transport; libdbus-1-dev for the keyring (Secret Service) client, and dbus
# plus gnome-keyring for the end-to-end tests' private keyring; python3 and openssl for the
# independent by-hand verifier (docs/verify_by_hand.py). The desktop app (Tauri 2) needs
# WebKitGTK, GTK, AppIndicator, librsvg, libsoup and xdo to build; its tests need Node.js and
# npm for the UI, and Xvfb, xauth, dbus-x11 and WebKitWebDriver to drive the built app, and
# python3-xlib to close its window as a window manager would (tests/support/wm_close.py).
# bubblewrap and xdg-dbus-proxy run WebKit's sandbox for the web view (WebKitGTK depends on
# them; named here because the desktop tests assert the sandbox). cpio packs the USB-path test
# VM's initramfs (scripts/vm.sh).
packages=(build-essential pkg-config python3 openssl libudev-dev libdbus-1-dev dbus gnome-keyring
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev
  libjavascriptcoregtk-4.1-dev libxdo-dev bubblewrap xdg-dbus-proxy
  xvfb xauth dbus-x11 webkit2gtk-driver python3-xlib cpio)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Node.js and npm build and test the desktop app's UI; the distribution's are enough.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi

# tauri-driver bridges WebDriver to the desktop app's WebKitWebDriver (tests only; ~1 min to
# build once, from crates.io).
if [ -z "${COUNTERSIGN_SETUP_NO_TEST_TOOLS:-}" ] && ! command -v tauri-driver >/dev/null 2>&1 \
  && ! [ -x "$HOME/.cargo/bin/tauri-driver" ]; then
  cargo install tauri-driver --locked --version "^2"
fi

# Rust toolchain components used by the checks.
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from your distribution or rustup first" >&2
  exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
