//! How operations get their models: the `model`, `revision` and `device` parameters every
//! model-backed operation shares, and the process-wide store that loads each model once and
//! shares it between steps and executions.

use std::sync::{Arc, LazyLock};

use serde_json::{Value, json};

use super::support::SpecExt;
use crate::engine::{OpContext, OpError, OperationSpec, ParamKind};
use crate::models::audioldm::AudioLdm;
use crate::models::wav2vec2::Wav2Vec2Model;
use crate::models::{DeviceChoice, DownloadProgress, ModelError, ModelRepo, SharedModels};

static WAV2VEC2: LazyLock<SharedModels<Wav2Vec2Model>> = LazyLock::new(SharedModels::new);
static AUDIOLDM: LazyLock<SharedModels<AudioLdm>> = LazyLock::new(SharedModels::new);

/// Declares `model`, `revision` and `device`.
pub fn model_params(spec: OperationSpec, default_model: Option<&str>) -> OperationSpec {
    spec.param(
        "model",
        ParamKind::String,
        default_model.map(|m| json!(m)),
        "a Hugging Face Hub id (`owner/name`, optionally `@revision`), fetched into the \
         standard cache (HF_HOME; HF_HUB_OFFLINE=1 forbids downloads), or a local directory \
         in the same layout",
    )
    .param(
        "revision",
        ParamKind::String,
        None,
        "a Hub branch, tag or commit to pin (default: main)",
    )
    .param(
        "device",
        ParamKind::String,
        Some(json!("auto")),
        "auto (a GPU this build supports, else the CPU), cpu, cuda, cuda:N or metal",
    )
}

/// A model failure as the engine sees it: the user's input or the checkpoint is wrong
/// (invalid), or the work was cancelled.
pub fn model_error(e: ModelError) -> OpError {
    match e {
        ModelError::Cancelled => OpError::Cancelled,
        ModelError::Candle(e) => OpError::failed(e.to_string()),
        other => OpError::invalid(other.to_string()),
    }
}

/// The Wav2Vec2 model a step names, loaded once per process and device.
pub fn wav2vec2(ctx: &OpContext<'_>, model: &str) -> Result<Arc<Wav2Vec2Model>, OpError> {
    shared(ctx, &WAV2VEC2, model, Wav2Vec2Model::load)
}

/// The AudioLDM pipeline a step names, loaded once per process and device.
pub fn audioldm(ctx: &OpContext<'_>, model: &str) -> Result<Arc<AudioLdm>, OpError> {
    shared(ctx, &AUDIOLDM, model, AudioLdm::load)
}

type Loader<T> =
    fn(&ModelRepo, &candle_core::Device, &mut dyn FnMut(DownloadProgress)) -> Result<T, ModelError>;

/// A model from `store`, keyed by model and device, loaded with `load` the first time.
fn shared<T>(
    ctx: &OpContext<'_>,
    store: &SharedModels<T>,
    model: &str,
    load: Loader<T>,
) -> Result<Arc<T>, OpError> {
    let (repo, device) = open(ctx, model)?;
    let key = format!(
        "{}|{}",
        repo.name(),
        crate::models::device::device_label(&device)
    );
    store
        .get_or_load(&key, || {
            ctx.progress
                .report(0.0, &format!("loading {}", repo.name()));
            load(&repo, &device, &mut download_progress(ctx))
        })
        .map_err(model_error)
}

/// The repository and device a step's parameters name.
pub fn open(ctx: &OpContext<'_>, model: &str) -> Result<(ModelRepo, candle_core::Device), OpError> {
    let revision = ctx.param("revision").and_then(Value::as_str);
    let repo = ModelRepo::open(model, revision).map_err(model_error)?;
    let choice: DeviceChoice = ctx
        .param("device")
        .and_then(Value::as_str)
        .unwrap_or("auto")
        .parse()
        .map_err(model_error)?;
    let device = choice.device().map_err(model_error)?;
    Ok((repo, device))
}

/// Download progress as step progress (the first 10 % of the bar).
pub fn download_progress<'a>(ctx: &'a OpContext<'_>) -> impl FnMut(DownloadProgress) + 'a {
    let mut last = 0.0f32;
    move |p: DownloadProgress| {
        let fraction = if p.total > 0 {
            p.done as f32 / p.total as f32
        } else {
            0.0
        };
        // Report each whole percent once; a large file sends thousands of updates.
        if fraction - last >= 0.01 || fraction >= 1.0 {
            last = fraction;
            let mb = |b: u64| b as f64 / 1e6;
            ctx.progress.report(
                0.1 * fraction,
                &format!(
                    "downloading {} ({:.0}/{:.0} MB)",
                    p.file,
                    mb(p.done),
                    mb(p.total)
                ),
            );
        }
    }
}
