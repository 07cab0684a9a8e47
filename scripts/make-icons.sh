#!/usr/bin/env bash
# Regenerates icons/ from the SVG sources in icons/src/ (the results are committed; run this only after
# editing a source). Needs Debian's librsvg2-bin (rsvg-convert) and python3-pil (ICO and ICNS writers).
set -euo pipefail
cd "$(dirname "$0")/../icons"
command -v rsvg-convert >/dev/null || { echo "make-icons: apt-get install librsvg2-bin" >&2; exit 1; }
/usr/bin/python3 -c 'import PIL' 2>/dev/null || { echo "make-icons: apt-get install python3-pil" >&2; exit 1; }

# App icon: the sizes Tauri's bundler and the Linux desktop file use.
for size in 32 64 128 256 512 1024; do
  rsvg-convert -w "$size" -h "$size" src/app.svg -o "app-$size.png"
done
cp app-32.png 32x32.png
cp app-32.png ../ui/icon.png   # the pages' header icon
cp app-128.png 128x128.png
cp app-256.png 128x128@2x.png
cp app-512.png icon.png
rm app-32.png app-128.png
# Tray icons, one per state.
for state in idle ringing in-call problem; do
  rsvg-convert -w 64 -h 64 "src/tray-$state.svg" -o "tray-$state.png"
done
/usr/bin/python3 - <<'PY'
from PIL import Image
big = Image.open("app-1024.png").convert("RGBA")
big.save("icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
big.save("icon.icns")
PY
rm app-64.png app-256.png app-512.png app-1024.png
ls -1
