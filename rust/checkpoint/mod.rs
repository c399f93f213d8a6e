//! Model checkpoints: floDl's `.fdl` format (byte-compatible) and
//! safetensors.
//!
//! Two rules hold for every file format here (DESIGN.md §6):
//! - writes are atomic: a temporary file in the destination's folder,
//!   flushed and fsynced, renamed over the destination, then the folder is
//!   fsynced; an interruption leaves the previous file intact;
//! - loads parse and validate the whole file into memory (magic, version,
//!   sizes, dtypes, shapes, hash) and convert every value to its target's
//!   dtype and device before the first parameter is written, so a bad file
//!   is a `Checkpoint` error and leaves the model unchanged.
//!
//! A SIGKILL during a save can leave the temporary file
//! (`.<name>.<pid>.<n>.tmp` next to the destination) behind; it is never
//! read, and the next write into that folder removes it (`temp`).

mod fdl;
mod migrate;
mod safetensors;
mod temp;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tch::{Kind, Tensor};

use crate::graph::Graph;
use crate::nn::{Module, Parameter};
use crate::{Error, Result};

pub use fdl::{
    checkpoint_keys, checkpoint_version, load_checkpoint_file, save_checkpoint_file, FORMAT_VERSION,
};
pub use migrate::{migrate_checkpoint_file, MigrateReport};
pub use safetensors::{
    load_safetensors_into, read_safetensors_file, safetensors_metadata, save_safetensors_file,
    Metadata,
};

#[cfg(target_endian = "big")]
compile_error!("checkpoint files hold little-endian data; big-endian hosts are not supported");

/// What a load matched: `loaded` (model names, parameters then buffers in
/// model order), `skipped` (file entries with no model name, in file order)
/// and `missing` (model names the file lacks; they keep their values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    pub skipped: Vec<String>,
    pub missing: Vec<String>,
}

/// A corrupt or unfitting file: names the file and what is wrong.
pub(crate) fn bad_file(kind: &str, path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!("{kind} '{}': {msg}", path.display()))
}

/// An operating-system failure on `path`.
pub(crate) fn os_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("cannot {action} '{}': {e}", path.display()))
}

pub(crate) fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".gz")
}

/// The whole file, gunzipped when its name ends in `.gz`.
pub(crate) fn read_bytes(kind: &str, path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| os_error("read", path, e))?;
    if !is_gz(path) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).map_err(
        |e| {
            bad_file(
                kind,
                path,
                format!("the gzip stream is truncated or corrupt ({e})"),
            )
        },
    )?;
    Ok(out)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `path` atomically: `body` streams into a temporary file in the
/// same folder (gzip-compressed when `path` ends in `.gz`), which is flushed,
/// fsynced and renamed over `path`; the folder is fsynced last so the rename
/// itself survives a power loss. On any error the temporary file is removed
/// and `path` is untouched.
pub(crate) fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::Value(format!("'{}' is not a file path", path.display())))?
        .to_string_lossy()
        .into_owned();
    temp::remove_stale(&dir);
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| os_error("create", &tmp, e))?;
        let werr = |e| os_error("write", path, e);
        let mut buf = std::io::BufWriter::with_capacity(1 << 20, f);
        if is_gz(path) {
            let mut gz = flate2::write::GzEncoder::new(&mut buf, flate2::Compression::default());
            body(&mut gz)?;
            gz.finish().map_err(werr)?;
        } else {
            body(&mut buf)?;
        }
        let f = buf.into_inner().map_err(|e| werr(e.into_error()))?;
        f.sync_all().map_err(werr)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| os_error("replace", path, e))?;
        // Persist the rename; a folder that cannot be opened for fsync (some
        // network filesystems) does not make the save fail.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// One named value to load: an entry of a file, or a tensor of a state dict.
pub(crate) trait Source {
    fn name(&self) -> &str;
    fn dims(&self) -> Vec<i64>;
    fn value(&self) -> Result<Tensor>;
}

/// One tensor read from a file, still as raw little-endian bytes.
pub(crate) struct RawEntry<'a> {
    pub name: String,
    pub dims: Vec<i64>,
    pub kind: Kind,
    pub data: &'a [u8],
}

impl Source for RawEntry<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn dims(&self) -> Vec<i64> {
        self.dims.clone()
    }
    fn value(&self) -> Result<Tensor> {
        Ok(Tensor::f_from_data_size(self.data, &self.dims, self.kind)?)
    }
}

impl Source for (String, Tensor) {
    fn name(&self) -> &str {
        &self.0
    }
    fn dims(&self) -> Vec<i64> {
        self.1.size()
    }
    fn value(&self) -> Result<Tensor> {
        Ok(self.1.shallow_clone())
    }
}

/// Validated writes: every value already has its target's shape, dtype and
/// device, so applying them cannot fail half-way for a format reason.
pub(crate) struct LoadPlan {
    writes: Vec<(Tensor, Tensor)>,
    pub report: LoadReport,
}

/// The one named-load plan (files and state dicts): matches sources to
/// targets by exact name, checks shapes (`misfit(name, have, want)` makes
/// the error) and builds every new value on the target's dtype and device;
/// touches no target.
pub(crate) fn plan_load<S: Source>(
    sources: &[S],
    targets: &[&Parameter],
    misfit: impl Fn(&str, &[i64], &[i64]) -> Error,
) -> Result<LoadPlan> {
    let by_name: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name(), i))
        .collect();
    let mut used = vec![false; sources.len()];
    let mut report = LoadReport::default();
    let mut writes = Vec::new();
    for t in targets {
        let Some(&i) = by_name.get(t.name.as_str()) else {
            report.missing.push(t.name.clone());
            continue;
        };
        let e = &sources[i];
        let want = t.tensor.size();
        let have = e.dims();
        if have != want {
            return Err(misfit(e.name(), &have, &want));
        }
        let dst_kind = t.tensor.f_kind()?;
        let dst_dev = t.tensor.device();
        let mut v = e.value()?;
        if v.f_kind()? != dst_kind {
            v = v.f_to_kind(dst_kind)?;
        }
        if v.device() != dst_dev {
            v = v.f_to_device(dst_dev)?;
        }
        used[i] = true;
        writes.push((t.tensor.shallow_clone(), v));
        report.loaded.push(t.name.clone());
    }
    report.skipped = sources
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(e, _)| e.name().to_string())
        .collect();
    Ok(LoadPlan { writes, report })
}

/// [`plan_load`] for a file's entries: a misfit is a bad file.
pub(crate) fn plan_file_load(
    kind: &str,
    path: &Path,
    entries: &[RawEntry<'_>],
    targets: &[&Parameter],
) -> Result<LoadPlan> {
    plan_load(entries, targets, |name, have, want| {
        bad_file(
            kind,
            path,
            format!("entry '{name}' has shape {have:?} in the file but {want:?} in the model"),
        )
    })
}

impl LoadPlan {
    /// Copies every value in place (same storage: optimizers and Python
    /// handles keep seeing the parameters).
    pub fn apply(self) -> Result<LoadReport> {
        let _g = tch::no_grad_guard();
        for (mut dst, src) in self.writes {
            dst.f_copy_(&src)?;
        }
        Ok(self.report)
    }
}

/// Raw little-endian bytes of a tensor (any device, any layout).
pub(crate) fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let kind = t.f_kind()?;
    let numel = t.numel();
    let mut buf = vec![0u8; numel * kind.elt_size_in_bytes()];
    if numel > 0 {
        t.f_copy_data_u8(&mut buf, numel)?;
    }
    Ok(buf)
}

/// Names must be unique within a file.
pub(crate) fn check_unique_names(kind: &str, path: &Path, named: &[&Parameter]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in named {
        if !seen.insert(p.name.as_str()) {
            return Err(Error::Value(format!(
                "{kind} '{}': the name '{}' appears twice",
                path.display(),
                p.name
            )));
        }
    }
    Ok(())
}

impl Graph {
    /// floDl's `Graph::save_checkpoint`: parameters then buffers, with this
    /// graph's structural hash.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        save_checkpoint_file(
            path,
            &self.named_parameters(),
            &self.named_buffers(),
            Some(&self.structural_hash()),
        )
    }

    /// Loads by name; with `strict_hash`, a file from another architecture
    /// (both hashes non-zero and different) is an error.
    pub fn load_checkpoint(&self, path: &Path, strict_hash: bool) -> Result<LoadReport> {
        let hash = self.structural_hash();
        load_checkpoint_file(
            path,
            &self.named_parameters(),
            &self.named_buffers(),
            strict_hash.then_some(hash.as_str()),
        )
    }

    /// torch's `load_state_dict` over the same plan as the files: parameters
    /// and buffers by exact name, shapes checked, dtype and device cast.
    /// With `strict`, a missing or unexpected key is an error; nothing is
    /// written unless every value fits. `skipped` holds the unexpected keys.
    pub fn load_state_dict(&self, state: &[(String, Tensor)], strict: bool) -> Result<LoadReport> {
        let params = self.named_parameters();
        let buffers = self.named_buffers();
        let targets: Vec<&Parameter> = params.iter().chain(&buffers).collect();
        let plan = plan_load(state, &targets, |name, have, want| {
            Error::Shape(format!(
                "load_state_dict: '{name}' has shape {have:?} in the dict, {want:?} in the graph"
            ))
        })?;
        let r = &plan.report;
        if strict && !(r.missing.is_empty() && r.skipped.is_empty()) {
            return Err(Error::Key(format!(
                "load_state_dict: missing keys {:?}, unexpected keys {:?}",
                r.missing, r.skipped
            )));
        }
        plan.apply()
    }

    /// Loads a file saved from the child graph at `tree_path` into that
    /// child, validated against the child's hash and names.
    pub fn load_subgraph_checkpoint(
        me: &Arc<dyn Module>,
        tree_path: &str,
        file: &Path,
    ) -> Result<LoadReport> {
        Graph::subgraph(me, tree_path)?.load_checkpoint(file, true)
    }
}
