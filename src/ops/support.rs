//! What the operations share: declaring parameters briefly, reading audio inputs, and
//! storing audio results as content-addressed artifacts.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::audio::{self, AudioBuffer, AudioError, TransformReport};
use crate::engine::cache::hash_file;
use crate::engine::{
    AudioArtifact, InputKind, InputSpec, OpContext, OpError, Operation, OperationSpec, OutputSpec,
    ParamKind, ParamSpec,
};
use crate::workflow::StepType;

/// An operation made of a declaration and a function.
pub struct FnOperation {
    pub spec: OperationSpec,
    pub run: fn(&OpContext<'_>) -> Result<Value, OpError>,
}

impl Operation for FnOperation {
    fn spec(&self) -> &OperationSpec {
        &self.spec
    }
    fn run(&self, ctx: &OpContext<'_>) -> Result<Value, OpError> {
        // Decoding and the analyses watch the step's token from inside the audio library.
        audio::cancel::with_stop(ctx.cancel.flag(), || (self.run)(ctx))
    }
}

/// Starts a declaration.
pub fn spec(step_type: StepType, name: &str, description: &str) -> OperationSpec {
    OperationSpec {
        step_type,
        name: name.to_string(),
        description: description.to_string(),
        inputs: Vec::new(),
        parameters: Vec::new(),
        outputs: Vec::new(),
        seed_parameter: None,
        deterministic: true,
    }
}

/// Builder helpers on [`OperationSpec`], so each operation reads as its contract.
pub trait SpecExt {
    fn audio_input(self, name: &str, description: &str) -> Self;
    fn variadic_audio_input(self, name: &str, description: &str) -> Self;
    fn param(self, name: &str, kind: ParamKind, default: Option<Value>, description: &str) -> Self;
    fn output(self, name: &str, description: &str) -> Self;
}

impl SpecExt for OperationSpec {
    fn audio_input(mut self, name: &str, description: &str) -> Self {
        self.inputs.push(InputSpec {
            name: name.into(),
            kind: InputKind::Audio,
            description: description.into(),
            required: true,
            variadic: false,
        });
        self
    }

    fn variadic_audio_input(mut self, name: &str, description: &str) -> Self {
        self.inputs.push(InputSpec {
            name: name.into(),
            kind: InputKind::Audio,
            description: description.into(),
            required: true,
            variadic: true,
        });
        self
    }

    fn param(
        mut self,
        name: &str,
        kind: ParamKind,
        default: Option<Value>,
        description: &str,
    ) -> Self {
        self.parameters.push(ParamSpec {
            name: name.into(),
            kind,
            description: description.into(),
            default,
            required: false,
        });
        self
    }

    fn output(mut self, name: &str, description: &str) -> Self {
        self.outputs.push(OutputSpec {
            name: name.into(),
            description: description.into(),
        });
        self
    }
}

pub fn number(min: Option<f64>, max: Option<f64>) -> ParamKind {
    ParamKind::Number { min, max }
}

pub fn integer(min: Option<i64>, max: Option<i64>) -> ParamKind {
    ParamKind::Integer { min, max }
}

pub fn choice(choices: &[&str]) -> ParamKind {
    ParamKind::Choice {
        choices: choices.iter().map(|c| c.to_string()).collect(),
    }
}

/// A bad file is the caller's problem, an unwritable artifact is ours.
pub fn audio_error(e: AudioError) -> OpError {
    match e {
        AudioError::Cancelled => OpError::Cancelled,
        AudioError::Write { .. } => OpError::Failed(e.to_string()),
        other => OpError::Invalid(other.to_string()),
    }
}

/// Decodes the audio bound to input `name`.
pub fn load(ctx: &OpContext<'_>, name: &str) -> Result<(AudioBuffer, PathBuf), OpError> {
    let (path, _) = ctx.audio_input(name)?;
    ctx.cancel.check()?;
    let buffer = audio::decode_file(&path).map_err(audio_error)?;
    ctx.cancel.check()?;
    Ok((buffer, path))
}

/// The path of the audio bound to input `name` (for streaming transforms).
pub fn input_path(ctx: &OpContext<'_>, name: &str) -> Result<PathBuf, OpError> {
    let (path, _) = ctx.audio_input(name)?;
    if !path.is_file() {
        return Err(OpError::invalid(format!(
            "input `{name}`: {} does not exist or is not a file",
            path.display()
        )));
    }
    Ok(path)
}

/// A temporary WAV file in the artifact folder for a step to write into.
pub fn scratch_file(ctx: &OpContext<'_>) -> Result<tempfile::TempPath, OpError> {
    scratch_file_with(ctx, ".wav")
}

/// A temporary file with the given suffix in the artifact folder.
pub fn scratch_file_with(ctx: &OpContext<'_>, suffix: &str) -> Result<tempfile::TempPath, OpError> {
    tempfile::Builder::new()
        .prefix(".grym-artifact-")
        .suffix(suffix)
        .tempfile_in(ctx.artifact_dir)
        .map(|f| f.into_temp_path())
        .map_err(|e| OpError::failed(format!("{}: {e}", ctx.artifact_dir.display())))
}

/// Moves a finished WAV into the artifact store under its content hash.
pub fn store_artifact(
    ctx: &OpContext<'_>,
    written: tempfile::TempPath,
) -> Result<AudioArtifact, OpError> {
    let (path, hash) = store_file(ctx, written, "wav")?;
    describe(&path, hash)
}

/// Moves any finished file into the artifact store as `<hash>.<extension>`.
pub fn store_file(
    ctx: &OpContext<'_>,
    written: tempfile::TempPath,
    extension: &str,
) -> Result<(PathBuf, String), OpError> {
    let hash = hash_file(&written).map_err(OpError::Failed)?;
    let path = ctx.artifact_dir.join(format!("{hash}.{extension}"));
    written
        .persist(&path)
        .map_err(|e| OpError::failed(format!("{}: {}", path.display(), e.error)))?;
    Ok((path, hash))
}

/// The artifact reference of an existing WAV file.
pub fn describe(path: &Path, hash: String) -> Result<AudioArtifact, OpError> {
    let reader =
        audio::AudioReader::open(path, audio::DecodeOptions::default()).map_err(audio_error)?;
    let info = reader.info();
    let frames = info.frames.unwrap_or(0);
    Ok(AudioArtifact {
        path: path.to_path_buf(),
        sample_rate: info.sample_rate,
        channels: info.channels as u16,
        duration: frames as f64 / f64::from(info.sample_rate.max(1)),
        hash,
    })
}

/// Writes a buffer as a 32-bit float artifact.
pub fn save_buffer(ctx: &OpContext<'_>, buffer: &AudioBuffer) -> Result<AudioArtifact, OpError> {
    let scratch = scratch_file(ctx)?;
    audio::write_f32_artifact(&scratch, buffer).map_err(audio_error)?;
    store_artifact(ctx, scratch)
}

/// The result object of a transformation: the artifact under `audio`, plus what the
/// transform reported.
pub fn transform_result(artifact: AudioArtifact, report: &TransformReport) -> Value {
    let mut result = json!({
        "audio": artifact,
        "sampleRate": report.sample_rate,
        "channels": report.channels,
        "frames": report.frames,
        "duration": report.frames as f64 / f64::from(report.sample_rate.max(1)),
    });
    if let Some(g) = report.gain_db {
        result["gainDb"] = json!(g);
    }
    if let Some((start, end)) = report.kept_frames {
        result["keptFrames"] = json!([start, end]);
    }
    result
}

/// Reads an optional number parameter.
pub fn opt_f64(ctx: &OpContext<'_>, name: &str) -> Result<Option<f64>, OpError> {
    match ctx.param(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| OpError::invalid(format!("parameter `{name}` must be a number"))),
    }
}

/// Reads a whole-number parameter that must fit `usize`.
pub fn usize_param(ctx: &OpContext<'_>, name: &str) -> Result<usize, OpError> {
    let v = ctx.i64_param(name)?;
    usize::try_from(v)
        .map_err(|_| OpError::invalid(format!("parameter `{name}` must not be negative")))
}

/// A plain file name for the output folder (no folders, nothing hidden), ending in
/// `.extension` (added when missing).
pub fn plain_file_name(name: &str, extension: &str) -> Result<String, OpError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 200;
    if !ok {
        return Err(OpError::invalid(format!(
            "fileName `{name}` must be a plain file name (no folders, not hidden)"
        )));
    }
    let suffix = format!(".{extension}");
    Ok(if name.to_ascii_lowercase().ends_with(&suffix) {
        name.to_string()
    } else {
        format!("{name}{suffix}")
    })
}

pub fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, OpError> {
    serde_json::to_value(v).map_err(|e| OpError::failed(format!("cannot encode the result: {e}")))
}
