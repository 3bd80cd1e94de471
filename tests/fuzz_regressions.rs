//! Inputs that once broke parse → validate → save → reload (fuzz/seeds/parse_validate).

use grym_synth::workflow::file::{FileError, Format, parse_str, to_string};

fn seed(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds/parse_validate")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// RON reads `inf`, JSON cannot write it: such a file is refused when read, naming the field.
#[test]
fn an_infinite_layout_position_is_refused() {
    let err = parse_str(&seed("layout-infinite-position.ron"), Format::Ron).unwrap_err();
    assert!(
        err.to_string().contains("layout.nodes.analyse.x is inf"),
        "{err}"
    );
}

/// The schema version is read as RON reads it (here hex), not guessed from the text.
#[test]
fn a_newer_schema_written_in_hex_is_refused() {
    let err = parse_str(&seed("ron-hex-schema-version.ron"), Format::Ron).unwrap_err();
    assert!(
        matches!(err, FileError::NewerSchema { found: 2, .. }),
        "{err}"
    );
}

/// A description that mentions `schemaVersion: 9` does not make a valid file unreadable.
#[test]
fn schema_version_text_inside_a_string_is_not_the_version() {
    let text = seed("audio-enhancement.ron")
        .replacen("schemaVersion: 1,", "", 1)
        .replacen("description: \"", "description: \"schemaVersion: 9 — ", 1);
    assert!(text.contains("schemaVersion: 9"));
    let wf = parse_str(&text, Format::Ron).unwrap();
    let json = to_string(&wf, Format::Json).unwrap();
    assert_eq!(parse_str(&json, Format::Json).unwrap(), wf);
}
