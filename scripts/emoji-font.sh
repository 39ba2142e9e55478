#!/usr/bin/env bash
# Rebuilds assets/fonts/NotoEmoji-Regular.ttf, the emoji font the window
# bundles: Google's Noto Emoji (monochrome outlines, SIL OFL 1.1) as the
# Fontsource project packages it on npm, its "emoji" subset at weight 400,
# converted from WOFF to TrueType (egui reads OpenType, not WOFF).
# Needs npm and Python with fontTools (pip install fonttools==4.68.0).
set -euo pipefail
cd "$(dirname "$0")/.."

version=5.3.2
tarball_sha256=1fe49bb2cf7c2d78f93c0a69b6a431dcfd0d585b7831eba87fae6888ccf8d373
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@fontsource/noto-emoji@$version" >/dev/null)
echo "$tarball_sha256  $work/fontsource-noto-emoji-$version.tgz" | sha256sum -c -
tar -xzf "$work/fontsource-noto-emoji-$version.tgz" -C "$work"
python3 - "$work/package/files/noto-emoji-emoji-400-normal.woff" assets/fonts/NotoEmoji-Regular.ttf <<'PY'
import sys
from fontTools.ttLib import TTFont
# Keep the font's own timestamp, so the output is the same every time.
font = TTFont(sys.argv[1], recalcTimestamp=False)
font.flavor = None
font.save(sys.argv[2])
PY
cp "$work/package/LICENSE" assets/fonts/OFL.txt
sha256sum assets/fonts/NotoEmoji-Regular.ttf
