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
        name: "loudness-normalize",
        description: "Measure loudness, normalise quiet clips to -23 LUFS, verify, export 24-bit 48 kHz",
        text: include_str!("../../workflows/loudness-normalize.ron"),
    },
    Template {
        name: "rhythm-report",
        description: "Onsets, tempo, beats, sections, spectral features and loudness of a clip",
        text: include_str!("../../workflows/rhythm-report.ron"),
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
