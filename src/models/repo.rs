//! Where a model's files come from: a local directory, or a Hugging Face Hub repository
//! fetched with `hf-hub` into the standard cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`), at a pinned revision if one is given, and never over the
//! network when `HF_HUB_OFFLINE` is set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Cache, Repo};

use super::ModelError;

/// Progress of one file's download.
#[derive(Debug, Clone, Copy)]
pub struct DownloadProgress<'a> {
    pub file: &'a str,
    pub done: u64,
    pub total: u64,
}

/// How the Hub is reached.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Only the local cache; a file not in it is an error rather than a download.
    pub offline: bool,
    pub cache_dir: Option<PathBuf>,
    /// Another Hub endpoint (a mirror); the default is huggingface.co.
    pub endpoint: Option<String>,
    pub token: Option<String>,
}

impl HubOptions {
    /// Reads `HF_HUB_OFFLINE`, `HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT` and `HF_TOKEN` as the
    /// Python libraries do.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .or_else(|| var("HF_HOME").map(|home| PathBuf::from(home).join("hub")));
        HubOptions {
            offline,
            cache_dir,
            endpoint: var("HF_ENDPOINT"),
            token: var("HF_TOKEN"),
        }
    }

    fn cache_dir(&self) -> Result<PathBuf, ModelError> {
        if let Some(dir) = &self.cache_dir {
            return Ok(dir.clone());
        }
        dirs::home_dir()
            .map(|home| home.join(".cache").join("huggingface").join("hub"))
            .ok_or_else(|| {
                ModelError::Input(
                    "no home directory for the Hugging Face cache; set HF_HOME or HF_HUB_CACHE"
                        .into(),
                )
            })
    }
}

/// A model's files, local or on the Hub.
pub struct ModelRepo {
    name: String,
    source: Source,
}

enum Source {
    Local(PathBuf),
    Hub(Box<HubRepo>),
}

struct HubRepo {
    id: String,
    revision: String,
    cache_dir: PathBuf,
    cache: Cache,
    repo: Repo,
    api: Option<ApiRepo>,
    /// The repository's file list, asked once, to tell an absent optional file from a
    /// failed download.
    listing: OnceLock<Result<Vec<String>, String>>,
}

impl ModelRepo {
    /// `spec` is a local directory or a Hub id (`owner/name`, optionally `@revision`), with
    /// the Hub reached as the environment says.
    pub fn open(spec: &str, revision: Option<&str>) -> Result<Self, ModelError> {
        Self::open_with(spec, revision, &HubOptions::from_env())
    }

    pub fn open_with(
        spec: &str,
        revision: Option<&str>,
        options: &HubOptions,
    ) -> Result<Self, ModelError> {
        let spec = spec.trim();
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(ModelRepo {
                name: spec.to_string(),
                source: Source::Local(path.to_path_buf()),
            });
        }
        let (id, pinned) = match spec.split_once('@') {
            Some((id, rev)) => (id, Some(rev)),
            None => (spec, None),
        };
        if !is_hub_id(id) {
            return Err(if looks_like_path(spec) {
                ModelError::MissingDirectory(path.to_path_buf())
            } else {
                ModelError::InvalidSpec(spec.to_string())
            });
        }
        let revision = revision
            .or(pinned)
            .filter(|r| !r.is_empty())
            .unwrap_or("main")
            .to_string();
        let cache_dir = options.cache_dir()?;
        let cache = Cache::new(cache_dir.clone());
        let repo = Repo::with_revision(id.to_string(), hf_hub::RepoType::Model, revision.clone());
        let api = if options.offline {
            None
        } else {
            let mut builder = ApiBuilder::from_cache(cache.clone())
                .with_progress(false)
                .with_token(options.token.clone());
            if let Some(endpoint) = &options.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            let api = builder.build().map_err(|e| ModelError::Hub {
                model: id.to_string(),
                file: String::new(),
                message: e.to_string(),
            })?;
            Some(api.repo(repo.clone()))
        };
        let name = if revision == "main" {
            id.to_string()
        } else {
            format!("{id}@{revision}")
        };
        Ok(ModelRepo {
            name,
            source: Source::Hub(Box::new(HubRepo {
                id: id.to_string(),
                revision,
                cache_dir,
                cache,
                repo,
                api,
                listing: OnceLock::new(),
            })),
        })
    }

    /// The model as the user named it, with a pinned revision: a key for sharing loaded
    /// models and the name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local directory, for a local model.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.source {
            Source::Local(dir) => Some(dir),
            Source::Hub(_) => None,
        }
    }

    /// A file of the model (`config.json`, `unet/config.json`), downloaded if it must be.
    pub fn file(
        &self,
        file: &str,
        progress: &mut dyn FnMut(DownloadProgress),
    ) -> Result<PathBuf, ModelError> {
        match &self.source {
            Source::Local(dir) => {
                let path = dir.join(file);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(self.missing(file))
                }
            }
            Source::Hub(hub) => {
                if let Some(path) = hub.cached(file) {
                    return Ok(path);
                }
                let Some(api) = &hub.api else {
                    return Err(ModelError::Offline {
                        model: self.name.clone(),
                        file: file.to_string(),
                    });
                };
                if let Some(Ok(listing)) = hub.listing.get()
                    && !listing.iter().any(|f| f == file)
                {
                    return Err(self.missing(file));
                }
                let reporter = Reporter {
                    file,
                    done: 0,
                    total: 0,
                    sink: progress,
                };
                tracing::info!(model = %self.name, file, "downloading from the Hugging Face Hub");
                api.download_with_progress(file, reporter)
                    .map_err(|e| ModelError::Hub {
                        model: self.name.clone(),
                        file: file.to_string(),
                        message: e.to_string(),
                    })
            }
        }
    }

    /// A file the model may or may not have (`model.safetensors` beside
    /// `pytorch_model.bin`): `None` when it has not. Offline, only the cache is asked.
    pub fn optional_file(
        &self,
        file: &str,
        progress: &mut dyn FnMut(DownloadProgress),
    ) -> Result<Option<PathBuf>, ModelError> {
        match &self.source {
            Source::Local(dir) => Ok(Some(dir.join(file)).filter(|p| p.is_file())),
            Source::Hub(hub) => {
                if let Some(path) = hub.cached(file) {
                    return Ok(Some(path));
                }
                let Some(api) = &hub.api else {
                    return Ok(None);
                };
                let listing = hub
                    .listing
                    .get_or_init(|| {
                        api.info()
                            .map(|info| info.siblings.into_iter().map(|s| s.rfilename).collect())
                            .map_err(|e| e.to_string())
                    })
                    .as_ref()
                    .map_err(|message| ModelError::Hub {
                        model: self.name.clone(),
                        file: file.to_string(),
                        message: message.clone(),
                    })?;
                if listing.iter().any(|f| f == file) {
                    self.file(file, progress).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Downloads every file a model needs to run (configurations, vocabularies, weights;
    /// PyTorch weights only where a folder has no safetensors) so later runs work offline.
    /// Returns the files now in the cache. A local model has nothing to fetch.
    pub fn fetch_all(
        &self,
        progress: &mut dyn FnMut(DownloadProgress),
    ) -> Result<Vec<PathBuf>, ModelError> {
        let Source::Hub(hub) = &self.source else {
            return Ok(Vec::new());
        };
        let Some(api) = &hub.api else {
            return Err(ModelError::Offline {
                model: self.name.clone(),
                file: "the file list".into(),
            });
        };
        let listing = api.info().map_err(|e| ModelError::Hub {
            model: self.name.clone(),
            file: "the file list".into(),
            message: e.to_string(),
        })?;
        let files: Vec<String> = listing.siblings.into_iter().map(|s| s.rfilename).collect();
        needed_files(&files)
            .into_iter()
            .map(|file| self.file(file, progress))
            .collect()
    }

    fn missing(&self, file: &str) -> ModelError {
        ModelError::MissingFile {
            model: self.name.clone(),
            file: file.to_string(),
        }
    }
}

impl HubRepo {
    fn cached(&self, file: &str) -> Option<PathBuf> {
        if let Some(path) = self.cache.repo(self.repo.clone()).get(file) {
            return Some(path);
        }
        // A revision pinned to a commit is found by its snapshot even without a ref file.
        let snapshot = self
            .cache_dir
            .join(format!("models--{}", self.id.replace('/', "--")))
            .join("snapshots")
            .join(&self.revision)
            .join(file);
        snapshot.is_file().then_some(snapshot)
    }
}

struct Reporter<'a, 'b> {
    file: &'a str,
    done: u64,
    total: u64,
    sink: &'b mut dyn FnMut(DownloadProgress),
}

impl hf_hub::api::Progress for Reporter<'_, '_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.total = size as u64;
        self.done = 0;
        (self.sink)(DownloadProgress {
            file: self.file,
            done: 0,
            total: self.total,
        });
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        (self.sink)(DownloadProgress {
            file: self.file,
            done: self.done,
            total: self.total,
        });
    }

    fn finish(&mut self) {}
}

/// Of a repository's files, those a model runs from.
fn needed_files(files: &[String]) -> Vec<&str> {
    let folder = |f: &str| f.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
    let has_safetensors: std::collections::HashSet<String> = files
        .iter()
        .filter(|f| f.ends_with(".safetensors"))
        .map(|f| folder(f))
        .collect();
    files
        .iter()
        .map(String::as_str)
        .filter(|f| {
            let ext = f.rsplit_once('.').map_or("", |(_, e)| e);
            match ext {
                "json" | "txt" | "model" | "safetensors" => true,
                "bin" => !has_safetensors.contains(&folder(f)),
                _ => false,
            }
        })
        .collect()
}

fn is_hub_id(id: &str) -> bool {
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 96
            && !part.starts_with(['.', '-'])
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match id.split_once('/') {
        Some((owner, name)) => valid(owner) && valid(name),
        None => valid(id),
    }
}

fn looks_like_path(spec: &str) -> bool {
    spec.starts_with(['/', '.', '~'])
        || spec.contains('\\')
        || spec.ends_with('/')
        || spec.matches('/').count() > 1
}

/// A model in the local Hub cache.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CachedModel {
    pub id: String,
    /// Revisions present, by ref name (`main`) where a ref points at them, else by commit.
    pub revisions: Vec<String>,
    pub bytes: u64,
    pub path: PathBuf,
}

/// The models in the local Hub cache, by id.
pub fn cached_models(options: &HubOptions) -> Result<Vec<CachedModel>, ModelError> {
    let dir = options.cache_dir()?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ModelError::Io { path: dir, source }),
    };
    let mut models = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("models--") else {
            continue;
        };
        let path = entry.path();
        let mut revisions: Vec<String> = std::fs::read_dir(path.join("refs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if revisions.is_empty() {
            revisions = std::fs::read_dir(path.join("snapshots"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
        }
        revisions.sort();
        models.push(CachedModel {
            id: id.replacen("--", "/", 1),
            revisions,
            bytes: directory_size(&path.join("blobs")),
            path,
        });
    }
    models.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(models)
}

fn directory_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline(dir: &Path) -> HubOptions {
        HubOptions {
            offline: true,
            cache_dir: Some(dir.to_path_buf()),
            ..HubOptions::default()
        }
    }

    /// Lays out a cache as `huggingface_hub` does: refs/<rev> → commit, snapshots/<commit>/.
    fn cache_with(dir: &Path, id: &str, files: &[&str]) {
        let repo = dir.join(format!("models--{}", id.replace('/', "--")));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        for file in files {
            let path = repo.join("snapshots").join(commit).join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"{}").unwrap();
        }
    }

    #[test]
    fn tells_directories_from_hub_ids() {
        let dir = tempfile::tempdir().unwrap();
        let opts = offline(dir.path());
        let local = ModelRepo::open_with(dir.path().to_str().unwrap(), None, &opts).unwrap();
        assert!(local.local_dir().is_some());
        let hub = ModelRepo::open_with("facebook/wav2vec2-base-960h", None, &opts).unwrap();
        assert!(hub.local_dir().is_none());
        assert_eq!(hub.name(), "facebook/wav2vec2-base-960h");
        let pinned = ModelRepo::open_with("org/model@v1.0", None, &opts).unwrap();
        assert_eq!(pinned.name(), "org/model@v1.0");
        let err = ModelRepo::open_with("./no/such/dir", None, &opts)
            .err()
            .unwrap();
        assert!(matches!(err, ModelError::MissingDirectory(_)), "{err}");
        let err = ModelRepo::open_with("not a model!", None, &opts)
            .err()
            .unwrap();
        assert!(matches!(err, ModelError::InvalidSpec(_)), "{err}");
    }

    #[test]
    fn offline_reads_the_cache_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        cache_with(dir.path(), "org/tiny", &["config.json", "unet/config.json"]);
        let repo = ModelRepo::open_with("org/tiny", None, &offline(dir.path())).unwrap();
        let path = repo.file("unet/config.json", &mut |_| {}).unwrap();
        assert!(path.ends_with("unet/config.json"));
        let err = repo.file("model.safetensors", &mut |_| {}).unwrap_err();
        assert!(matches!(err, ModelError::Offline { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("org/tiny") && text.contains("model.safetensors"),
            "{text}"
        );
        assert!(
            repo.optional_file("pytorch_model.bin", &mut |_| {})
                .unwrap()
                .is_none()
        );

        let models = cached_models(&offline(dir.path())).unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].id, "org/tiny");
        assert_eq!(models[0].revisions, vec!["main".to_string()]);
    }

    #[test]
    fn an_unreachable_hub_is_an_error_naming_model_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let opts = HubOptions {
            offline: false,
            cache_dir: Some(dir.path().to_path_buf()),
            // Nothing listens on port 9 of the loopback: the connection is refused at once.
            endpoint: Some("http://127.0.0.1:9".into()),
            token: None,
        };
        let repo = ModelRepo::open_with("org/absent", None, &opts).unwrap();
        let err = repo.file("config.json", &mut |_| {}).unwrap_err();
        assert!(matches!(err, ModelError::Hub { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("org/absent") && text.contains("config.json"),
            "{text}"
        );
        assert!(
            repo.optional_file("model.safetensors", &mut |_| {})
                .is_err()
        );
    }

    #[test]
    fn fetch_takes_what_a_model_runs_from() {
        let files: Vec<String> = [
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "tf_model.h5",
            "vocab.json",
            "README.md",
            "vocoder/pytorch_model.bin",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.bin",
            "merges.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            needed_files(&files),
            vec![
                "config.json",
                "model.safetensors",
                "vocab.json",
                "vocoder/pytorch_model.bin",
                "unet/config.json",
                "unet/diffusion_pytorch_model.safetensors",
                "merges.txt",
            ]
        );
    }

    #[test]
    fn local_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let repo =
            ModelRepo::open_with(dir.path().to_str().unwrap(), None, &offline(dir.path())).unwrap();
        assert!(repo.file("config.json", &mut |_| {}).is_ok());
        assert!(matches!(
            repo.file("vocab.json", &mut |_| {}),
            Err(ModelError::MissingFile { .. })
        ));
        assert!(
            repo.optional_file("vocab.json", &mut |_| {})
                .unwrap()
                .is_none()
        );
    }
}
