#!/usr/bin/env bash
# Renders the app's PNG icons from icon.svg (needs rsvg-convert, Debian's librsvg2-bin).
# The PNGs are committed; run this after changing the SVG.
set -euo pipefail
cd "$(dirname "$0")"
rsvg-convert -w 32 -h 32 icon.svg -o 32x32.png
rsvg-convert -w 128 -h 128 icon.svg -o 128x128.png
rsvg-convert -w 256 -h 256 icon.svg -o 128x128@2x.png
rsvg-convert -w 512 -h 512 icon.svg -o icon.png
# The tray's three states: idle (the app icon), something waiting (badged), not connected.
rsvg-convert -w 64 -h 64 icon.svg -o tray-idle.png
rsvg-convert -w 64 -h 64 tray-waiting.svg -o tray-waiting.png
rsvg-convert -w 64 -h 64 tray-offline.svg -o tray-offline.png
