//! The rendering core and its UI-side controller, independent of any audio device.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use rtrb::{Consumer, Producer, RingBuffer};

use super::PlaybackError;
use crate::audio::{AudioBuffer, resample};

/// Room for commands between two callbacks; the UI sends a handful per user action.
const COMMAND_CAPACITY: usize = 256;

/// One of the two clips that A/B switching chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }

    fn from_index(i: u8) -> Slot {
        if i == 1 { Slot::B } else { Slot::A }
    }

    pub fn label(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }
}

/// Audio ready for the device: planar samples at the device's rate.
#[derive(Debug, Clone)]
pub struct Clip {
    audio: Arc<AudioBuffer>,
}

impl Clip {
    /// Audio that is already at the device's rate (shared, not copied).
    pub fn new(audio: Arc<AudioBuffer>) -> Clip {
        Clip { audio }
    }

    /// Resamples `audio` to `device_rate` when it differs. This can take a while for long
    /// audio; call it off the UI thread.
    pub fn prepare(audio: Arc<AudioBuffer>, device_rate: u32) -> Result<Clip, PlaybackError> {
        if audio.sample_rate() == device_rate {
            return Ok(Clip { audio });
        }
        let resampled = resample(&audio, device_rate)?;
        Ok(Clip {
            audio: Arc::new(resampled),
        })
    }

    pub fn frames(&self) -> u64 {
        self.audio.frames() as u64
    }

    pub fn sample_rate(&self) -> u32 {
        self.audio.sample_rate()
    }

    /// Writes `out.len() / out_channels` frames starting at `start`, mapping the clip's
    /// channels onto the device's: mono goes to every channel, several channels to a mono
    /// device are averaged, otherwise channel by channel with extra device channels silent.
    fn write(&self, out: &mut [f32], start: usize, out_channels: usize) {
        let planes = self.audio.channels();
        let frames = out.len() / out_channels;
        match (planes.len(), out_channels) {
            (1, _) => {
                let src = &planes[0][start..start + frames];
                for (frame, &s) in out.chunks_exact_mut(out_channels).zip(src) {
                    frame.fill(s);
                }
            }
            (n, 1) => {
                let scale = 1.0 / n as f32;
                for (i, o) in out.iter_mut().enumerate() {
                    *o = planes.iter().map(|p| p[start + i]).sum::<f32>() * scale;
                }
            }
            (n, _) => {
                for (i, frame) in out.chunks_exact_mut(out_channels).enumerate() {
                    for (c, o) in frame.iter_mut().enumerate() {
                        *o = if c < n { planes[c][start + i] } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// What the UI asks of the renderer.
enum Command {
    Load(Slot, Box<Clip>),
    Unload(Slot),
    Play,
    Pause,
    Stop,
    Seek(u64),
    Loop(Option<(u64, u64)>),
    Select(Slot),
}

/// What the renderer publishes for the UI, as plain atomics.
#[derive(Debug, Default)]
struct Shared {
    position: AtomicU64,
    playing: AtomicBool,
    active: AtomicU8,
    /// How many commands the renderer has applied; the UI compares it with how many it sent.
    applied: AtomicU64,
}

/// The real-time half: owned by the audio callback.
pub struct Renderer {
    clips: [Option<Box<Clip>>; 2],
    active: Slot,
    position: u64,
    playing: bool,
    looping: Option<(u64, u64)>,
    out_channels: usize,
    applied: u64,
    commands: Consumer<Command>,
    retired: Producer<Box<Clip>>,
    shared: Arc<Shared>,
}

/// The UI half: sends commands, reads the published state.
pub struct Controller {
    sample_rate: u32,
    out_channels: usize,
    commands: Producer<Command>,
    retired: Consumer<Box<Clip>>,
    shared: Arc<Shared>,
    sent: u64,
    /// The position the UI last asked for, shown until the renderer has caught up.
    expected: Option<(u64, bool, Slot)>,
    lengths: [Option<u64>; 2],
    looping: Option<(u64, u64)>,
}

/// A connected controller and renderer for a device running at `sample_rate` with
/// `out_channels` interleaved channels.
pub fn channel(sample_rate: u32, out_channels: usize) -> (Controller, Renderer) {
    let out_channels = out_channels.max(1);
    let (cmd_tx, cmd_rx) = RingBuffer::new(COMMAND_CAPACITY);
    // Every command retires at most one clip, so this ring cannot fill before the
    // controller drains it (it does so before every send).
    let (ret_tx, ret_rx) = RingBuffer::new(COMMAND_CAPACITY);
    let shared = Arc::new(Shared::default());
    let controller = Controller {
        sample_rate,
        out_channels,
        commands: cmd_tx,
        retired: ret_rx,
        shared: Arc::clone(&shared),
        sent: 0,
        expected: None,
        lengths: [None, None],
        looping: None,
    };
    let renderer = Renderer {
        clips: [None, None],
        active: Slot::A,
        position: 0,
        playing: false,
        looping: None,
        out_channels,
        applied: 0,
        commands: cmd_rx,
        retired: ret_tx,
        shared,
    };
    (controller, renderer)
}

impl Renderer {
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    fn retire(&mut self, clip: Option<Box<Clip>>) {
        if let Some(clip) = clip
            && let Err(rtrb::PushError::Full(clip)) = self.retired.push(clip)
        {
            // Unreachable while the controller drains before sending; dropping here
            // would free memory on the real-time thread, so keep the clip alive instead.
            std::mem::forget(clip);
        }
    }

    fn apply_commands(&mut self) {
        while let Ok(cmd) = self.commands.pop() {
            match cmd {
                Command::Load(slot, clip) => {
                    let old = self.clips[slot.index()].replace(clip);
                    self.retire(old);
                }
                Command::Unload(slot) => {
                    let old = self.clips[slot.index()].take();
                    self.retire(old);
                    if slot == self.active {
                        self.playing = false;
                    }
                }
                Command::Play => {
                    let len = self.active_len();
                    let in_loop = self
                        .looping
                        .is_some_and(|(s, e)| self.position >= s && self.position < e);
                    if let (Some((start, _)), false) = (self.looping, in_loop) {
                        self.position = start;
                    } else if self.position >= len {
                        self.position = 0;
                    }
                    self.playing = len > 0;
                }
                Command::Pause => self.playing = false,
                Command::Stop => {
                    self.playing = false;
                    self.position = self.looping.map_or(0, |(s, _)| s);
                }
                Command::Seek(frame) => self.position = frame,
                Command::Loop(range) => {
                    self.looping = range.filter(|(s, e)| e > s);
                }
                Command::Select(slot) => self.active = slot,
            }
            self.applied += 1;
        }
    }

    fn active_len(&self) -> u64 {
        self.clips[self.active.index()]
            .as_ref()
            .map_or(0, |c| c.frames())
    }

    /// Fills `out` (interleaved, `out_channels` per frame) and advances the position. This
    /// is all the device callback does; silence when paused, stopped or out of audio.
    pub fn render(&mut self, out: &mut [f32]) {
        self.apply_commands();
        let ch = self.out_channels;
        let frames = out.len() / ch;
        let mut written = 0usize;
        if let Some(clip) = self.clips[self.active.index()].as_deref() {
            let len = clip.frames();
            while self.playing && written < frames {
                let loop_end = self
                    .looping
                    .filter(|&(_, e)| self.position < e)
                    .map(|(s, e)| (s, e.min(len)));
                let end = loop_end.map_or(len, |(_, e)| e);
                if self.position >= end {
                    match loop_end {
                        Some((start, e)) if e > start => self.position = start,
                        _ => {
                            self.playing = false;
                            break;
                        }
                    }
                    continue;
                }
                let n = ((end - self.position) as usize).min(frames - written);
                clip.write(
                    &mut out[written * ch..(written + n) * ch],
                    self.position as usize,
                    ch,
                );
                self.position += n as u64;
                written += n;
                // A loop that ends exactly here wraps on the next pass.
                if let Some((start, e)) = loop_end
                    && self.position >= e
                {
                    self.position = start;
                }
            }
        } else {
            self.playing = false;
        }
        out[written * ch..].fill(0.0);
        self.shared.position.store(self.position, Ordering::Release);
        self.shared.playing.store(self.playing, Ordering::Release);
        self.shared
            .active
            .store(self.active.index() as u8, Ordering::Release);
        self.shared.applied.store(self.applied, Ordering::Release);
    }
}

impl Controller {
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    fn send(&mut self, cmd: Command) -> bool {
        // Clips the renderer let go of are freed here, on the UI side.
        while self.retired.pop().is_ok() {}
        match self.commands.push(cmd) {
            Ok(()) => {
                self.sent += 1;
                true
            }
            Err(_) => false,
        }
    }

    fn caught_up(&self) -> bool {
        self.shared.applied.load(Ordering::Acquire) >= self.sent
    }

    /// Puts `clip` into `slot` (replacing what was there). Returns false when the command
    /// ring is full (the device has stopped taking commands).
    pub fn load(&mut self, slot: Slot, clip: Clip) -> bool {
        let frames = clip.frames();
        let ok = self.send(Command::Load(slot, Box::new(clip)));
        if ok {
            self.lengths[slot.index()] = Some(frames);
        }
        ok
    }

    pub fn unload(&mut self, slot: Slot) {
        if self.send(Command::Unload(slot)) {
            self.lengths[slot.index()] = None;
        }
    }

    /// Whether a clip was loaded into `slot`.
    pub fn is_loaded(&self, slot: Slot) -> bool {
        self.lengths[slot.index()].is_some()
    }

    pub fn play(&mut self) {
        let (pos, _, slot) = self.state();
        if self.send(Command::Play) {
            self.expected = Some((pos, true, slot));
        }
    }

    pub fn pause(&mut self) {
        let (pos, _, slot) = self.state();
        if self.send(Command::Pause) {
            self.expected = Some((pos, false, slot));
        }
    }

    pub fn stop(&mut self) {
        let (_, _, slot) = self.state();
        if self.send(Command::Stop) {
            self.expected = Some((self.looping.map_or(0, |(s, _)| s), false, slot));
        }
    }

    /// Moves the playhead to `seconds`, playing or not.
    pub fn seek(&mut self, seconds: f64) {
        let frame = self.to_frames(seconds);
        let (_, playing, slot) = self.state();
        if self.send(Command::Seek(frame)) {
            self.expected = Some((frame, playing, slot));
        }
    }

    /// Loops `start..end` seconds while playing; `None` plays through.
    pub fn set_loop(&mut self, range: Option<(f64, f64)>) {
        let range = range
            .map(|(a, b)| (self.to_frames(a.min(b)), self.to_frames(a.max(b))))
            .filter(|(s, e)| e > s);
        if self.send(Command::Loop(range)) {
            self.looping = range;
        }
    }

    /// Switches to the clip in `slot` at the same position.
    pub fn select(&mut self, slot: Slot) {
        let (pos, playing, _) = self.state();
        if self.send(Command::Select(slot)) {
            self.expected = Some((pos, playing, slot));
        }
    }

    fn to_frames(&self, seconds: f64) -> u64 {
        (seconds.max(0.0) * f64::from(self.sample_rate)).round() as u64
    }

    /// (position in frames, playing, active slot): what the renderer published, or what
    /// the UI asked for while the renderer has not applied it yet.
    fn state(&self) -> (u64, bool, Slot) {
        match self.expected {
            Some(expected) if !self.caught_up() => expected,
            _ => (
                self.shared.position.load(Ordering::Acquire),
                self.shared.playing.load(Ordering::Acquire),
                Slot::from_index(self.shared.active.load(Ordering::Acquire)),
            ),
        }
    }

    /// The playhead in seconds.
    pub fn position(&self) -> f64 {
        self.state().0 as f64 / f64::from(self.sample_rate.max(1))
    }

    pub fn is_playing(&self) -> bool {
        self.state().1
    }

    pub fn active(&self) -> Slot {
        self.state().2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mono clip whose sample i is i (so output values name their source frame).
    fn ramp(frames: usize, offset: f32) -> Clip {
        let samples = (0..frames).map(|i| i as f32 + offset).collect();
        Clip::new(Arc::new(AudioBuffer::new(1000, vec![samples]).unwrap()))
    }

    fn render(r: &mut Renderer, frames: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; frames * r.out_channels()];
        r.render(&mut out);
        out
    }

    #[test]
    fn position_advances_while_playing_and_pause_is_silent() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(100, 0.0));
        c.play();
        assert!(c.is_playing(), "the request shows before the renderer runs");
        assert_eq!(
            render(&mut r, 10),
            (0..10).map(|i| i as f32).collect::<Vec<_>>()
        );
        assert_eq!(render(&mut r, 5), [10.0, 11.0, 12.0, 13.0, 14.0]);
        assert!((c.position() - 0.015).abs() < 1e-9);
        c.pause();
        assert_eq!(render(&mut r, 4), [0.0; 4]);
        assert!(
            (c.position() - 0.015).abs() < 1e-9,
            "paused keeps the position"
        );
        assert!(!c.is_playing());
        c.play();
        assert_eq!(render(&mut r, 2), [15.0, 16.0]);
    }

    #[test]
    fn stops_at_the_end_and_plays_again_from_the_start() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(6, 0.0));
        c.play();
        assert_eq!(render(&mut r, 8), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]);
        assert!(!c.is_playing());
        c.play();
        assert_eq!(render(&mut r, 2), [0.0, 1.0]);
        c.stop();
        assert_eq!(render(&mut r, 2), [0.0, 0.0]);
        assert_eq!(c.position(), 0.0);
    }

    #[test]
    fn seek_moves_the_playhead() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(100, 0.0));
        c.seek(0.05);
        assert!(
            (c.position() - 0.05).abs() < 1e-9,
            "shown before the renderer runs"
        );
        c.play();
        assert_eq!(render(&mut r, 3), [50.0, 51.0, 52.0]);
        c.seek(0.01);
        assert_eq!(render(&mut r, 2), [10.0, 11.0]);
        assert!(c.is_playing(), "seeking while playing keeps playing");
    }

    #[test]
    fn loop_wraps_within_the_range() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(100, 0.0));
        c.set_loop(Some((0.010, 0.014)));
        c.play();
        // Play starts at the loop's start when the playhead is outside it.
        let out = render(&mut r, 10);
        assert_eq!(
            out,
            [10.0, 11.0, 12.0, 13.0, 10.0, 11.0, 12.0, 13.0, 10.0, 11.0]
        );
        assert!(c.is_playing());
        // Turning the loop off plays on through the end of the range.
        c.set_loop(None);
        assert_eq!(render(&mut r, 4), [12.0, 13.0, 14.0, 15.0]);
    }

    #[test]
    fn loop_past_the_clip_end_wraps_at_the_end() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(5, 0.0));
        c.set_loop(Some((0.003, 0.050)));
        c.play();
        assert_eq!(render(&mut r, 6), [3.0, 4.0, 3.0, 4.0, 3.0, 4.0]);
    }

    #[test]
    fn ab_switch_keeps_the_position() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(100, 0.0));
        c.load(Slot::B, ramp(100, 1000.0));
        c.play();
        assert_eq!(render(&mut r, 3), [0.0, 1.0, 2.0]);
        c.select(Slot::B);
        assert_eq!(c.active(), Slot::B);
        assert_eq!(render(&mut r, 3), [1003.0, 1004.0, 1005.0]);
        c.select(Slot::A);
        assert_eq!(render(&mut r, 2), [6.0, 7.0]);
        assert_eq!(c.active(), Slot::A);
        assert!((c.position() - 0.008).abs() < 1e-9);
    }

    #[test]
    fn switching_to_a_shorter_clip_past_its_end_stops() {
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, ramp(100, 0.0));
        c.load(Slot::B, ramp(4, 1000.0));
        c.seek(0.050);
        c.play();
        render(&mut r, 1);
        c.select(Slot::B);
        assert_eq!(render(&mut r, 2), [0.0, 0.0]);
        assert!(!c.is_playing());
    }

    #[test]
    fn channels_map_to_the_device() {
        // Mono to stereo: both channels.
        let (mut c, mut r) = channel(1000, 2);
        c.load(Slot::A, ramp(4, 1.0));
        c.play();
        assert_eq!(render(&mut r, 2), [1.0, 1.0, 2.0, 2.0]);

        // Stereo to mono: the mean; stereo to four channels: two silent.
        let stereo = || {
            Clip::new(Arc::new(
                AudioBuffer::new(1000, vec![vec![1.0, 3.0], vec![3.0, 5.0]]).unwrap(),
            ))
        };
        let (mut c, mut r) = channel(1000, 1);
        c.load(Slot::A, stereo());
        c.play();
        assert_eq!(render(&mut r, 2), [2.0, 4.0]);
        let (mut c, mut r) = channel(1000, 4);
        c.load(Slot::A, stereo());
        c.play();
        assert_eq!(render(&mut r, 1), [1.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn nothing_loaded_is_silence() {
        let (mut c, mut r) = channel(1000, 2);
        c.play();
        assert_eq!(render(&mut r, 3), [0.0; 6]);
        assert!(!c.is_playing());
    }

    #[test]
    fn replaced_clips_are_returned_to_the_controller() {
        let (mut c, mut r) = channel(1000, 1);
        let first = Arc::new(AudioBuffer::new(1000, vec![vec![0.5; 10]]).unwrap());
        c.load(Slot::A, Clip::new(Arc::clone(&first)));
        render(&mut r, 1);
        c.load(Slot::A, ramp(10, 0.0));
        render(&mut r, 1);
        assert_eq!(Arc::strong_count(&first), 2, "the renderer handed it back");
        c.play();
        assert_eq!(
            Arc::strong_count(&first),
            1,
            "and the controller freed it when it next sent a command"
        );
    }

    #[test]
    fn prepare_resamples_to_the_device_rate() {
        let audio = Arc::new(AudioBuffer::new(24_000, vec![vec![0.25; 2400]]).unwrap());
        let clip = Clip::prepare(Arc::clone(&audio), 48_000).unwrap();
        assert_eq!(clip.sample_rate(), 48_000);
        assert_eq!(clip.frames(), 4800);
        let same = Clip::prepare(Arc::clone(&audio), 24_000).unwrap();
        assert!(Arc::ptr_eq(&same.audio, &audio), "no copy at the same rate");
    }
}
