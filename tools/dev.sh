#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine with a Rust toolchain:
#   bash tools/dev.sh run [ARGS...]   install what is missing, build, run grym-synth (no
#                                     arguments: the editor)
#   bash tools/dev.sh test            install what is missing, then format check, clippy, tests
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests need.
# The editor: Wayland/X11 headers for winit and rfd, Mesa's software OpenGL and EGL, Xvfb and
# ImageMagick for tools/screenshot.sh. Playback: ALSA headers for cpal.
PACKAGES=(pkg-config build-essential
    libwayland-dev libxkbcommon-dev libxkbcommon-x11-0 libgl1-mesa-dri libegl1
    libasound2-dev
    xvfb imagemagick)

install_system_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing system packages: ${missing[*]}" >&2
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_rust_components() {
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
}

case "${1:-}" in
    run)
        shift
        install_system_packages
        exec cargo run --release -- "$@"
        ;;
    test)
        install_system_packages
        install_rust_components
        cargo fmt --all -- --check
        cargo clippy --all-targets -- -D warnings
        cargo test
        ;;
    *)
        echo "usage: bash tools/dev.sh run [ARGS...] | test" >&2
        exit 2
        ;;
esac
