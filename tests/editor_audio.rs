//! The editor's audio panel driven through its real UI with egui_kittest: a waveform for a
//! file, a step's input and output side by side for A/B after a run, and what the panel
//! says when there is no audio output device (as on CI).

mod common;

use common::editor::{harness, run_to_completion, wait_for};
use std::path::{Path, PathBuf};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use grym_synth::audio::playback::Slot;
use grym_synth::engine::{Engine, EngineConfig};
use grym_synth::ui::audio::PlayerState;
use grym_synth::ui::{Document, Editor, Settings};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(name)
}

fn player_settled(e: &Editor) -> bool {
    matches!(
        e.audio.player,
        PlayerState::Ready(_) | PlayerState::Unavailable(_)
    )
}

/// Whatever the machine has: with no output device the panel says why playback is
/// unavailable; with one it names the device.
fn check_playback_status(h: &Harness<'_, Editor>) {
    match &h.state().audio.player {
        PlayerState::Unavailable(why) => {
            assert!(!why.is_empty());
            eprintln!("playback unavailable on this machine: {why}");
            assert!(
                h.query_by_label_contains("Playback unavailable:").is_some(),
                "the reason is shown: {why}"
            );
        }
        PlayerState::Ready(p) => {
            let device = p.device().to_string();
            assert!(h.query_by_label_contains(&device).is_some());
        }
        _ => unreachable!("waited for the player to settle"),
    }
}

#[test]
fn a_file_shows_as_a_waveform_and_playback_says_why_it_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _ops) = common::engine(dir.path(), 2);
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::blank(),
        Settings::default(),
    ));
    h.run_steps(2);

    // Open the Audio tab, type a file's path and show it.
    h.get_by_label("Audio").click();
    h.run_steps(2);
    let path = fixture("stereo.flac");
    h.get_by_role_and_label(Role::TextInput, "File").click();
    h.run_steps(1);
    h.get_by_role_and_label(Role::TextInput, "File")
        .type_text(&path.display().to_string());
    h.run_steps(1);
    h.get_by_label("Show").click();
    wait_for(&mut h, "the file to load", |e| e.audio.data().is_some());
    wait_for(&mut h, "the audio output to open or fail", player_settled);

    let data = h.state().audio.data().unwrap().clone();
    assert_eq!(data.path, path);
    assert_eq!(data.audio.num_channels(), 2);
    assert_eq!(data.levels.len(), 2, "a level pyramid per channel");
    // The panel shows the file, its length and format.
    assert!(h.query_by_label_contains("stereo.flac").is_some());
    assert!(
        h.query_by_label_contains(&format!("{} Hz, 2 ch", data.audio.sample_rate()))
            .is_some()
    );
    check_playback_status(&h);

    // Where there is an output device, play runs the real callback: the playhead moves,
    // and Space pauses.
    if matches!(h.state().audio.player, PlayerState::Ready(_)) {
        wait_for(&mut h, "the clip on the device", |e| e.audio.can_play());
        h.get_by_label("▶").click();
        wait_for(&mut h, "the playhead to move", |e| {
            e.audio.position().is_some_and(|p| p > 0.05)
        });
        h.key_press(egui::Key::Space);
        wait_for(&mut h, "the pause", |e| !e.audio.is_playing());
    }

    // The spectrogram toggle computes an image off the UI thread and shows it.
    h.get_by_label("Spectrogram").click();
    h.run_steps(1);
    assert!(h.state().audio.view.show_spectrogram);
    wait_for(&mut h, "the spectrogram", |e| {
        e.audio.view.spectrogram_ready() && !e.audio.view.is_busy()
    });
}

#[test]
fn a_step_with_input_and_output_audio_offers_ab() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        EngineConfig::new(dir.path()),
        grym_synth::ops::builtin_registry(),
    )
    .unwrap();
    let wf = common::workflow(
        "louder",
        "gain",
        json!({"audioFile": fixture("chord.wav").display().to_string()}),
        json!({
            "gain": {"type": "transformation", "operation": "gain",
                     "inputs": [{"source": "parameter", "key": "audioFile"}],
                     "parameters": {"db": 6.0}}
        }),
    );
    let mut h = harness(Editor::new(
        Ok(engine),
        Document::new(wf, None),
        Settings::default(),
    ));
    run_to_completion(&mut h);

    // The run panel offers the step's audio; it opens with input as A and output as B.
    h.get_by_label("🔊 waveform").click();
    h.run_steps(2);
    {
        let audio = &h.state().audio;
        assert!(audio.has_ab());
        assert_eq!(audio.source(Slot::A).unwrap().path, fixture("chord.wav"));
        assert!(audio.source(Slot::B).unwrap().label.contains("output"));
        assert_eq!(audio.active(), Slot::B, "the step's output is shown first");
    }
    wait_for(&mut h, "the output to load", |e| e.audio.data().is_some());
    wait_for(&mut h, "the audio output to open or fail", player_settled);
    check_playback_status(&h);

    // Switching to A shows the input at the same view.
    h.get_by_label_contains("A input").click();
    h.run_steps(2);
    assert_eq!(h.state().audio.active(), Slot::A);
    wait_for(&mut h, "the input to load", |e| e.audio.data().is_some());
    assert_eq!(h.state().audio.data().unwrap().path, fixture("chord.wav"));
}
