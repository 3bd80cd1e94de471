//! Audio I/O, DSP and playback.
