//! Workflow templates shipped with the program (the files in `workflows/`, built in so the
//! binary works from anywhere).

use super::file::{FileError, Format, parse_str};
use super::model::Workflow;

/// A built-in template: its name and its RON text.
pub struct Template {
    pub name: &'static str,
    pub description: &'static str,
    pub text: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "audio-enhancement",
        description: "The plan's example: analyse, generate an enhanced version, score it against the original and regenerate until the score passes",
        text: include_str!("../../workflows/audio-enhancement.ron"),
    },
    Template {
        name: "text-to-audio-quality-gate",
        description: "Generate from a prompt, score the clip with no reference and regenerate with the next seed until it passes (at most four takes); export it",
        text: include_str!("../../workflows/text-to-audio-quality-gate.ron"),
    },
    Template {
        name: "style-transfer",
        description: "Regenerate a source clip audio-to-audio toward a reference clip's sound; compare before and after, export, report",
        text: include_str!("../../workflows/style-transfer.ron"),
    },
    Template {
        name: "speech-transcription",
        description: "Transcribe speech with Wav2Vec2 (words with times) and report it with the recording's loudness",
        text: include_str!("../../workflows/speech-transcription.ron"),
    },
    Template {
        name: "rhythm-report",
        description: "Beats, bars and beat-aligned sections with level, brightness and pitch class per beat, the accent profile, tempo and loudness, as a report",
        text: include_str!("../../workflows/rhythm-report.ron"),
    },
    Template {
        name: "loudness-normalize",
        description: "For batches: normalise a clip more than 1 LU off -23 LUFS to -23 LUFS, verify, export 24-bit 48 kHz",
        text: include_str!("../../workflows/loudness-normalize.ron"),
    },
    Template {
        name: "match-reference",
        description: "High-pass and gain a recording, score it against a reference; `optimize` tunes the cutoff and gain",
        text: include_str!("../../workflows/match-reference.ron"),
    },
];

/// The template called `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

impl Template {
    /// Parses the template into a workflow.
    pub fn load(&self) -> Result<Workflow, FileError> {
        parse_str(self.text, Format::Ron).map_err(|e| {
            e.with_path(std::path::Path::new(&format!(
                "workflows/{}.ron",
                self.name
            )))
        })
    }
}
