//! Fuzzes workflow file parsing and validation.
//!
//! The input bytes are decoded (lossily) as UTF-8 and parsed both as RON and as JSON. Every
//! workflow that parses is validated, then written out in the *other* format and parsed
//! back: a workflow that loads must also survive being saved in either format.

#![no_main]

use grym_synth::workflow::file::{self, Format};
use grym_synth::workflow::validate;
use libfuzzer_sys::fuzz_target;

fn other(format: Format) -> Format {
    match format {
        Format::Ron => Format::Json,
        Format::Json => Format::Ron,
    }
}

fn check(text: &str, format: Format) {
    let Ok(workflow) = file::parse_str(text, format) else {
        return;
    };
    let report = validate(&workflow, None);

    let target = other(format);
    let written = file::to_string(&workflow, target).unwrap_or_else(|e| {
        panic!("a workflow parsed from {format:?} cannot be written as {target:?}: {e}")
    });
    let reparsed = file::parse_str(&written, target).unwrap_or_else(|e| {
        panic!(
            "a workflow parsed from {format:?} and written as {target:?} does not parse back: \
             {e}\n--- written ---\n{written}"
        )
    });
    // Validating the round-tripped workflow must not panic either.
    let _ = validate(&reparsed, None);
    drop(report);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text, Format::Ron);
    check(&text, Format::Json);
});
