#!/usr/bin/env bash
# Starts the editor under Xvfb (Mesa software OpenGL) with a workflow open and saves a PNG
# of the screen.
#   bash tools/screenshot.sh [WORKFLOW] [OUTPUT.png]
# Defaults: workflows/audio-enhancement.ron and assets/editor.png. Needs xvfb and imagemagick
# (tools/dev.sh installs them). SCREENSHOT_WAIT sets the seconds to wait before the capture.
set -euo pipefail
cd "$(dirname "$0")/.."

workflow=${1:-workflows/audio-enhancement.ron}
output=${2:-assets/editor.png}
wait_s=${SCREENSHOT_WAIT:-10}
size=${SCREENSHOT_SIZE:-1400x860}

cargo build --quiet --bin grym-synth
bin=target/debug/grym-synth

# A free display number.
display=99
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do
    display=$((display + 1))
done

# A throwaway home so that neither saved window state nor history leak in or out.
scratch=$(mktemp -d)
app=""
xvfb=""
cleanup() {
    [ -n "$app" ] && kill "$app" 2>/dev/null || true
    [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

Xvfb ":$display" -screen 0 "${size}x24" -nolisten tcp >"$scratch/xvfb.log" 2>&1 &
xvfb=$!
for _ in $(seq 50); do
    [ -e "/tmp/.X11-unix/X$display" ] && break
    sleep 0.1
done

env -u WAYLAND_DISPLAY \
    DISPLAY=":$display" LIBGL_ALWAYS_SOFTWARE=1 \
    HOME="$scratch" XDG_DATA_HOME="$scratch/data" XDG_CONFIG_HOME="$scratch/config" \
    GRYM_DATA_DIR="$scratch/grym" \
    "$bin" open "$workflow" >"$scratch/app.log" 2>&1 &
app=$!
sleep "$wait_s"
if ! kill -0 "$app" 2>/dev/null; then
    echo "the editor exited early:" >&2
    cat "$scratch/app.log" >&2
    exit 1
fi

mkdir -p "$(dirname "$output")"
DISPLAY=":$display" import -window root "$scratch/shot.png"
# Fewer colours keep the PNG small; the UI has few anyway.
convert "$scratch/shot.png" -strip -colors 255 -define png:compression-level=9 "$output"
echo "wrote $output ($(du -k "$output" | cut -f1) KB)"
