//! Checkpoint weights behind a `VarBuilder` whose errors name the file, the tensor and the
//! shapes, and which reads both layouts of weight-normalised tensors.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;

use super::ModelError;

/// Weight-norm tensors are published under two names: `weight_g`/`weight_v` (the old
/// `torch.nn.utils.weight_norm`) and `parametrizations.weight.original0/1` (its replacement).
/// Models ask for the old names; either is served.
const ALIASES: [(&str, &str); 2] = [
    ("weight_g", "parametrizations.weight.original0"),
    ("weight_v", "parametrizations.weight.original1"),
];

enum Tensors {
    Safetensors(candle_core::safetensors::MmapedSafetensors),
    Pickle(candle_core::pickle::PthTensors),
}

struct CheckedTensors {
    /// The file names, for messages.
    label: String,
    tensors: Tensors,
}

impl CheckedTensors {
    fn raw(&self, name: &str) -> candle_core::Result<Option<Tensor>> {
        match &self.tensors {
            Tensors::Safetensors(st) => {
                if st.get(name).is_err() {
                    return Ok(None);
                }
                st.load(name, &Device::Cpu).map(Some)
            }
            Tensors::Pickle(pth) => pth.get(name),
        }
    }

    fn exists(&self, name: &str) -> bool {
        match &self.tensors {
            Tensors::Safetensors(st) => st.get(name).is_ok(),
            Tensors::Pickle(pth) => pth.get(name).is_ok_and(|t| t.is_some()),
        }
    }

    /// The stored name for `name`, trying the weight-norm aliases.
    fn resolve(&self, name: &str) -> Option<String> {
        if self.exists(name) {
            return Some(name.to_string());
        }
        ALIASES.iter().find_map(|(old, new)| {
            let stem = name.strip_suffix(old)?;
            let alias = format!("{stem}{new}");
            self.exists(&alias).then_some(alias)
        })
    }

    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let missing =
            || candle_core::Error::Msg(format!("{}: tensor `{name}` is missing", self.label));
        let stored = self.resolve(name).ok_or_else(missing)?;
        let tensor = self.raw(&stored)?.ok_or_else(missing)?;
        tensor.to_dtype(dtype)?.to_device(device)
    }
}

impl SimpleBackend for CheckedTensors {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.load(name, dtype, device)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::Msg(format!(
                "{}: tensor `{name}` has shape {:?}, the configuration needs {:?}",
                self.label,
                tensor.dims(),
                shape.dims()
            )));
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.load(name, dtype, device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }
}

/// Opens checkpoint files (`.safetensors`, or PyTorch `.bin`/`.pt`) as one `VarBuilder`.
pub fn load(
    files: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>, ModelError> {
    let Some(first) = files.first() else {
        return Err(ModelError::Input("no weight files given".into()));
    };
    let label = files
        .iter()
        .map(|f| {
            f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    for file in files {
        if !file.is_file() {
            return Err(ModelError::Io {
                path: file.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
    }
    let tensors = if is_pickle(first) {
        if files.len() > 1 {
            return Err(ModelError::Input(format!(
                "{label}: sharded PyTorch checkpoints are not supported; convert to safetensors"
            )));
        }
        let pth = candle_core::pickle::PthTensors::new(first, None).map_err(|e| {
            ModelError::config(first, format!("not a readable PyTorch checkpoint: {e}"))
        })?;
        Tensors::Pickle(pth)
    } else {
        // SAFETY: the files are memory-mapped read-only; candle's loader validates the
        // header and every tensor's bounds. Like every mmap, a file truncated by another
        // program while mapped is outside what we can guard against.
        let st =
            unsafe { candle_core::safetensors::MmapedSafetensors::multi(files) }.map_err(|e| {
                ModelError::config(first, format!("not a readable safetensors file: {e}"))
            })?;
        Tensors::Safetensors(st)
    };
    let backend = CheckedTensors { label, tensors };
    Ok(VarBuilder::from_backend(
        Box::new(backend),
        dtype,
        device.clone(),
    ))
}

fn is_pickle(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("bin" | "pt" | "pth")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn write(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
        let path = dir.join("model.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, t)| (k.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    #[test]
    fn errors_name_the_file_the_tensor_and_the_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let path = write(dir.path(), &[("layer.weight", t)]);
        let vb = load(&[path], DType::F32, &Device::Cpu).unwrap();
        let err = vb.get((2, 3), "layer.bias").unwrap_err().to_string();
        assert!(
            err.contains("model.safetensors") && err.contains("`layer.bias`"),
            "{err}"
        );
        let err = vb.get((3, 2), "layer.weight").unwrap_err().to_string();
        assert!(err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
        assert!(vb.get((2, 3), "layer.weight").is_ok());
    }

    #[test]
    fn serves_weight_norm_tensors_under_either_name() {
        let dir = tempfile::tempdir().unwrap();
        let g = Tensor::ones((1, 1, 4), DType::F32, &Device::Cpu).unwrap();
        let path = write(dir.path(), &[("conv.parametrizations.weight.original0", g)]);
        let vb = load(&[path], DType::F32, &Device::Cpu).unwrap();
        assert!(vb.contains_tensor("conv.weight_g"));
        assert!(vb.get((1, 1, 4), "conv.weight_g").is_ok());
        assert!(!vb.contains_tensor("conv.weight_v"));
    }

    #[test]
    fn a_file_that_is_not_safetensors_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, b"not weights").unwrap();
        let err = load(&[path], DType::F32, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("model.safetensors") && err.contains("safetensors"),
            "{err}"
        );
    }
}
