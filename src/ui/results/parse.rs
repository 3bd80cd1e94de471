//! What a result holds, read from its JSON: the figures the result views draw. Pure
//! functions, tolerant of missing fields and of the shortened arrays live events carry
//! (`[…, "… 40 more"]`).

use serde_json::Value;

/// Onsets, beats and sections of a `patterns` result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rhythm {
    /// `(time, strength)` in seconds and onset strength.
    pub onsets: Vec<(f64, f64)>,
    pub beats: Vec<f64>,
    /// `(start, end)` in seconds.
    pub sections: Vec<(f64, f64)>,
    pub tempo: Option<f64>,
    pub regularity: Option<f64>,
    /// Some arrays were shortened (a live event's summary): more follow once the run's
    /// whole record is read back.
    pub shortened: bool,
}

impl Rhythm {
    /// Reads a result with `onsets` or `beats`; `None` when it has neither.
    pub fn parse(result: &Value) -> Option<Rhythm> {
        let onsets = result.get("onsets").and_then(Value::as_array);
        let beats = result.get("beats").and_then(Value::as_array);
        if onsets.is_none() && beats.is_none() {
            return None;
        }
        let mut r = Rhythm {
            tempo: result.get("tempo").and_then(Value::as_f64),
            regularity: result.get("rhythmicRegularity").and_then(Value::as_f64),
            ..Rhythm::default()
        };
        for item in onsets.into_iter().flatten() {
            match item {
                Value::Number(n) => r.onsets.extend(n.as_f64().map(|t| (t, 1.0))),
                Value::Object(o) => {
                    if let Some(t) = o.get("time").and_then(Value::as_f64) {
                        let strength = o.get("strength").and_then(Value::as_f64).unwrap_or(1.0);
                        r.onsets.push((t, strength));
                    }
                }
                _ => r.shortened = true,
            }
        }
        for item in beats.into_iter().flatten() {
            match item.as_f64() {
                Some(t) => r.beats.push(t),
                None => r.shortened = true,
            }
        }
        if let Some(segments) = result.get("segments").and_then(Value::as_array) {
            for s in segments {
                match (
                    s.get("start").and_then(Value::as_f64),
                    s.get("end").and_then(Value::as_f64),
                ) {
                    (Some(a), Some(b)) if b >= a => r.sections.push((a, b)),
                    _ => r.shortened |= s.is_string(),
                }
            }
        }
        Some(r)
    }

    /// The latest time anything is marked at.
    pub fn last_time(&self) -> f64 {
        let onsets = self.onsets.iter().map(|o| o.0);
        let sections = self.sections.iter().map(|s| s.1);
        onsets
            .chain(self.beats.iter().copied())
            .chain(sections)
            .fold(0.0, f64::max)
    }
}

/// One aspect of a `compare` result.
#[derive(Debug, Clone, PartialEq)]
pub struct Aspect {
    pub name: String,
    pub score: f64,
    pub weight: f64,
    pub detail: String,
}

/// The scores of a `compare` result.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub quality: f64,
    pub aspects: Vec<Aspect>,
    pub improvement_areas: Vec<String>,
}

impl Scores {
    /// Reads a result with `qualityScore`; `None` without one.
    pub fn parse(result: &Value) -> Option<Scores> {
        let quality = result.get("qualityScore").and_then(Value::as_f64)?;
        let aspects = result
            .get("aspects")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(name, a)| {
                        Some(Aspect {
                            name: name.clone(),
                            score: a.get("score").and_then(Value::as_f64)?,
                            weight: a.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
                            detail: a
                                .get("detail")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let improvement_areas = result
            .get("improvementAreas")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some(Scores {
            quality,
            aspects,
            improvement_areas,
        })
    }
}

/// Whether a result is a `features` result: per-file MFCC and chroma means.
pub fn is_features(result: &Value) -> bool {
    let array = |k: &str| result.get(k).is_some_and(Value::is_array);
    array("mfcc") && array("chroma")
}

/// How a result is drawn, besides its JSON tree (always shown).
#[derive(Debug, Clone, PartialEq)]
pub enum ResultKind {
    /// Onsets, beats and sections over the analysed audio.
    Rhythm(Rhythm),
    /// MFCC and chroma heat maps (and the spectrogram) of the analysed audio.
    Features,
    /// Aspect scores as bars, with the threshold and the overall score.
    Scores(Scores),
    /// The step's input and output audio overlaid.
    BeforeAfter,
    /// Audio the step wrote, without an input to compare it with.
    Audio,
    /// Nothing to draw: the JSON tree alone.
    Json,
}

impl ResultKind {
    /// Chooses the view for `result`, knowing whether the step had audio in and out.
    pub fn of(result: &Value, has_input_audio: bool, has_output_audio: bool) -> ResultKind {
        if let Some(scores) = Scores::parse(result) {
            return ResultKind::Scores(scores);
        }
        if let Some(rhythm) = Rhythm::parse(result) {
            return ResultKind::Rhythm(rhythm);
        }
        if is_features(result) {
            return ResultKind::Features;
        }
        match (has_input_audio, has_output_audio) {
            (true, true) => ResultKind::BeforeAfter,
            (false, true) => ResultKind::Audio,
            _ => ResultKind::Json,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            ResultKind::Rhythm(_) => "Onsets, beats and sections",
            ResultKind::Features => "Spectrogram, MFCC and chroma",
            ResultKind::Scores(_) => "Comparison scores",
            ResultKind::BeforeAfter => "Before and after",
            ResultKind::Audio => "Output audio",
            ResultKind::Json => "Result",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patterns_results_become_markers() {
        let r = json!({
            "onsets": [{"time": 0.5, "strength": 2.0}, {"time": 1.0, "strength": 1.0}, "… 3 more"],
            "tempo": 120.0,
            "beats": [0.5, 1.0, 1.5],
            "rhythmicRegularity": 0.9,
            "boundaries": [2.0],
            "segments": [{"start": 0.0, "end": 2.0}, {"start": 2.0, "end": 3.5}]
        });
        let rhythm = Rhythm::parse(&r).unwrap();
        assert_eq!(rhythm.onsets, [(0.5, 2.0), (1.0, 1.0)]);
        assert_eq!(rhythm.beats, [0.5, 1.0, 1.5]);
        assert_eq!(rhythm.sections, [(0.0, 2.0), (2.0, 3.5)]);
        assert_eq!(rhythm.tempo, Some(120.0));
        assert!(rhythm.shortened);
        assert_eq!(rhythm.last_time(), 3.5);
        assert!(matches!(
            ResultKind::of(&r, true, false),
            ResultKind::Rhythm(_)
        ));
        assert_eq!(Rhythm::parse(&json!({"tempo": 1})), None);
    }

    #[test]
    fn compare_results_become_score_bars() {
        let r = json!({
            "qualityScore": 0.62,
            "aspects": {
                "loudness": {"score": 0.4, "weight": 0.2, "detail": "4 LU quieter"},
                "noise": {"score": 0.9, "weight": 0.2, "detail": "same floor"},
                "broken": {"weight": 1.0}
            },
            "improvementAreas": ["loudness"]
        });
        let s = Scores::parse(&r).unwrap();
        assert_eq!(s.quality, 0.62);
        let names: Vec<&str> = s.aspects.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["loudness", "noise"],
            "file order, aspects without a score left out"
        );
        assert_eq!(s.aspects[0].detail, "4 LU quieter");
        assert_eq!(s.improvement_areas, ["loudness"]);
        assert!(matches!(
            ResultKind::of(&r, true, true),
            ResultKind::Scores(_)
        ));
    }

    #[test]
    fn the_view_follows_what_the_result_holds() {
        let features = json!({"mfcc": [1.0], "chroma": [0.5], "tempo": 100.0});
        assert_eq!(ResultKind::of(&features, true, false), ResultKind::Features);
        let artifact = json!({"audio": {"path": "/x.wav"}});
        assert_eq!(
            ResultKind::of(&artifact, true, true),
            ResultKind::BeforeAfter
        );
        assert_eq!(ResultKind::of(&artifact, false, true), ResultKind::Audio);
        assert_eq!(
            ResultKind::of(&json!({"value": 1}), true, false),
            ResultKind::Json
        );
    }
}
