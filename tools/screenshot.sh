#!/usr/bin/env bash
# Starts the editor under Xvfb (Mesa software OpenGL) with a workflow open and saves a PNG
# of the screen.
#   bash tools/screenshot.sh [WORKFLOW] [OUTPUT.png]
#   bash tools/screenshot.sh --timeline [OUTPUT.png]
#   bash tools/screenshot.sh --optimise [OUTPUT.png]
# Defaults: workflows/audio-enhancement.ron and assets/editor.png. With --timeline it mixes
# a test clip from the audio fixtures (a chord over a click track), runs
# workflows/rhythm-report.ron on it, and captures the editor showing that execution's
# timeline with the patterns step's onsets, beats and sections over the clip (default
# assets/timeline.png); SCREENSHOT_WORKFLOW and SCREENSHOT_STEP run another workflow (with an
# `audioFile` parameter) and show another step's result. With --optimise it mixes noise into
# the chord fixture, runs a 16-trial study of workflows/match-reference.ron matching it back
# to the clean chord, and captures the Optimise tab (default assets/optimise.png). Needs
# xvfb and imagemagick
# (tools/dev.sh installs them). SCREENSHOT_WAIT sets the seconds to wait before the capture,
# SCREENSHOT_SIZE the screen.
set -euo pipefail
cd "$(dirname "$0")/.."

timeline=false
optimise=false
if [ "${1:-}" = "--timeline" ]; then
    timeline=true
    shift
    workflow=${SCREENSHOT_WORKFLOW:-workflows/rhythm-report.ron}
    output=${1:-assets/timeline.png}
elif [ "${1:-}" = "--optimise" ]; then
    optimise=true
    shift
    workflow=workflows/match-reference.ron
    output=${1:-assets/optimise.png}
else
    workflow=${1:-workflows/audio-enhancement.ron}
    output=${2:-assets/editor.png}
fi
wait_s=${SCREENSHOT_WAIT:-10}
size=${SCREENSHOT_SIZE:-1400x860}

cargo build --quiet --bin grym-synth
bin=${CARGO_TARGET_DIR:-target}/debug/grym-synth

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

fixtures=tests/fixtures/audio
# Mixes two audio fixtures with grym-synth (gains in dB as a JSON list) and prints the path
# of the mix.
mix_fixtures() {
    local mixed
    mixed=$(GRYM_DATA_DIR="$scratch/grym" "$bin" op transformation/mix \
        --input "audio=$fixtures/$1" --input "audio=$fixtures/$2" \
        --param "gainsDb=$3" --json |
        sed -n 's/^ *"path": *"\(.*\)",*$/\1/p' | head -n 1)
    if [ -z "$mixed" ]; then
        echo "mixing $1 and $2 failed" >&2
        exit 1
    fi
    echo "$mixed"
}

open_args=()
if $timeline; then
    # The clip: the chord over the first half of the click track.
    clip=$(mix_fixtures chord.wav clicks.wav '[-2,0]')
    GRYM_DATA_DIR="$scratch/grym" "$bin" run "$workflow" --param "audioFile=$clip" >/dev/null
    open_args=(--execution latest --step "${SCREENSHOT_STEP:-patterns}")
fi
if $optimise; then
    # The recording: the chord with noise over it; the reference: the clean chord.
    clip=$(mix_fixtures chord.wav noise.wav '[0,-12]')
    GRYM_DATA_DIR="$scratch/grym" "$bin" optimize "$workflow" --param "audioFile=$clip" \
        --param "referenceFile=$fixtures/chord.wav" --budget 16 --seed 2 >/dev/null 2>&1
    open_args=(--tab optimise)
fi

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
    "$bin" open "$workflow" "${open_args[@]}" >"$scratch/app.log" 2>&1 &
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
