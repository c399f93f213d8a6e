//! Checkpoint files (`.fdl`, safetensors) over `crate::checkpoint`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use pyo3::types::{PyDict, PyTuple};

use super::args::extract;
use super::errors::{raise, Exc, IntoPyResult};
use super::graph::PyGraph;
use super::tensor::{tensor_arg, to_py};
use crate::checkpoint as ck;
use crate::graph::Graph;
use crate::nn::{Module, Parameter};

/// What a load matched: `loaded` (model names, parameters then buffers),
/// `skipped` (file entries no model name matched), `missing` (model names
/// the file lacks; they keep their values). Unpacks as a 3-tuple.
#[pyclass(name = "LoadReport", module = "ferrotorch._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyLoadReport {
    #[pyo3(get)]
    loaded: Vec<String>,
    #[pyo3(get)]
    skipped: Vec<String>,
    #[pyo3(get)]
    missing: Vec<String>,
}

impl From<ck::LoadReport> for PyLoadReport {
    fn from(r: ck::LoadReport) -> Self {
        PyLoadReport {
            loaded: r.loaded,
            skipped: r.skipped,
            missing: r.missing,
        }
    }
}

#[pymethods]
impl PyLoadReport {
    #[new]
    #[pyo3(signature = (loaded = None, skipped = None, missing = None))]
    fn new(
        loaded: Option<&Bound<'_, PyAny>>,
        skipped: Option<&Bound<'_, PyAny>>,
        missing: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let names = |ob: Option<&Bound<'_, PyAny>>, name: &str| -> PyResult<Vec<String>> {
            match ob.filter(|o| !o.is_none()) {
                Some(o) => extract(o, "LoadReport()", name, "a list of str"),
                None => Ok(Vec::new()),
            }
        };
        Ok(PyLoadReport {
            loaded: names(loaded, "loaded")?,
            skipped: names(skipped, "skipped")?,
            missing: names(missing, "missing")?,
        })
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = PyTuple::new(
            py,
            [
                self.loaded.clone(),
                self.skipped.clone(),
                self.missing.clone(),
            ],
        )?;
        Ok(t.as_any().try_iter()?.into_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "LoadReport(loaded={:?}, skipped={:?}, missing={:?})",
            self.loaded, self.skipped, self.missing
        )
    }
}

/// What a migration did: `unchanged` (same name and shape), `remapped`
/// (`(old, new)` pairs matched by shape and dtype), `dropped` (file entries
/// left out), `missing` (model names nothing matched).
#[pyclass(name = "MigrateReport", module = "ferrotorch._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyMigrateReport {
    inner: ck::MigrateReport,
}

#[pymethods]
impl PyMigrateReport {
    #[getter]
    fn unchanged(&self) -> Vec<String> {
        self.inner.unchanged.clone()
    }

    #[getter]
    fn remapped(&self) -> Vec<(String, String)> {
        self.inner.remapped.clone()
    }

    #[getter]
    fn dropped(&self) -> Vec<String> {
        self.inner.dropped.clone()
    }

    #[getter]
    fn missing(&self) -> Vec<String> {
        self.inner.missing.clone()
    }

    /// True when nothing was dropped and nothing is missing.
    fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "MigrateReport(unchanged={:?}, remapped={:?}, dropped={:?}, missing={:?})",
            r.unchanged, r.remapped, r.dropped, r.missing
        )
    }
}

/// A graph, or named tensors (a dict or an iterable of (name, tensor) pairs).
enum Target {
    Graph(Arc<Graph>),
    Named(Vec<Parameter>),
}

fn named_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Parameter>> {
    let pair = |k: Bound<'_, PyAny>, v: Bound<'_, PyAny>| -> PyResult<Parameter> {
        let name: String = k.extract().map_err(|_| {
            raise(
                Exc::InputType,
                format!("{what}: tensor names must be str, got {}", k.get_type()),
            )
        })?;
        let tensor = tensor_arg(&v, &format!("{what}['{name}']"))?;
        Ok(Parameter { name, tensor })
    };
    if let Ok(d) = ob.downcast::<PyDict>() {
        return d.iter().map(|(k, v)| pair(k, v)).collect();
    }
    let bad = || {
        raise(
            Exc::InputType,
            format!(
                "{what}: expected a Graph, a dict of name -> tensor or (name, tensor) pairs, got {}",
                ob.get_type()
            ),
        )
    };
    let it = ob.try_iter().map_err(|_| bad())?;
    it.map(|item| {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract().map_err(|_| bad())?;
        pair(k, v)
    })
    .collect()
}

fn target_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Target> {
    if let Ok(g) = ob.downcast::<PyGraph>() {
        return Ok(Target::Graph(g.get().inner.clone()));
    }
    Ok(Target::Named(named_arg(ob, what)?))
}

impl Target {
    /// (parameters, buffers) with their floDl names.
    fn split(self) -> (Vec<Parameter>, Vec<Parameter>) {
        match self {
            Target::Graph(g) => (g.named_parameters(), g.named_buffers()),
            Target::Named(v) => (v, Vec::new()),
        }
    }
}

pub fn graph_save(py: Python<'_>, g: &Arc<Graph>, path: PathBuf) -> PyResult<()> {
    let g = g.clone();
    py.allow_threads(move || g.save_checkpoint(&path)).py()
}

pub fn graph_load(
    py: Python<'_>,
    g: &Arc<Graph>,
    path: PathBuf,
    strict_hash: bool,
) -> PyResult<PyLoadReport> {
    let g = g.clone();
    let r = py
        .allow_threads(move || g.load_checkpoint(&path, strict_hash))
        .py()?;
    Ok(r.into())
}

pub fn graph_load_subgraph(
    py: Python<'_>,
    me: Arc<dyn Module>,
    tree_path: String,
    file: PathBuf,
) -> PyResult<PyLoadReport> {
    let r = py
        .allow_threads(move || Graph::load_subgraph_checkpoint(&me, &tree_path, &file))
        .py()?;
    Ok(r.into())
}

/// Saves a graph (parameters, buffers, structural hash) or named tensors
/// (zero hash) as floDl's `.fdl`; gzip when the path ends in `.gz`. Atomic.
#[pyfunction]
fn save_checkpoint(py: Python<'_>, target: &Bound<'_, PyAny>, path: PathBuf) -> PyResult<()> {
    match target_arg(target, "save_checkpoint(target)")? {
        Target::Graph(g) => graph_save(py, &g, path),
        Target::Named(v) => py
            .allow_threads(move || ck::save_checkpoint_file(&path, &v, &[], None))
            .py(),
    }
}

/// Loads a `.fdl` file by name into a graph or named tensors; the file is
/// validated in full before anything is written.
#[pyfunction]
#[pyo3(signature = (path, target, strict_hash = false))]
fn load_checkpoint(
    py: Python<'_>,
    path: PathBuf,
    target: &Bound<'_, PyAny>,
    strict_hash: bool,
) -> PyResult<PyLoadReport> {
    match target_arg(target, "load_checkpoint(target)")? {
        Target::Graph(g) => graph_load(py, &g, path, strict_hash),
        Target::Named(v) => {
            let r = py
                .allow_threads(move || ck::load_checkpoint_file(&path, &v, &[], None))
                .py()?;
            Ok(r.into())
        }
    }
}

/// Entry names of a `.fdl` file, in file order.
#[pyfunction]
fn checkpoint_keys(py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
    py.allow_threads(move || ck::checkpoint_keys(&path)).py()
}

/// The version field of a `.fdl` file (1 or 2 for floDl files).
#[pyfunction]
fn checkpoint_version(py: Python<'_>, path: PathBuf) -> PyResult<u32> {
    py.allow_threads(move || ck::checkpoint_version(&path)).py()
}

/// Rewrites `src` into `dst` under the target's names (exact name and
/// shape first, then by shape and dtype in file order); `dst` is version 2
/// with a zero hash.
#[pyfunction]
fn migrate_checkpoint(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    target: &Bound<'_, PyAny>,
) -> PyResult<PyMigrateReport> {
    let (params, buffers) = target_arg(target, "migrate_checkpoint(target)")?.split();
    let inner = py
        .allow_threads(move || ck::migrate_checkpoint_file(&src, &dst, &params, &buffers))
        .py()?;
    Ok(PyMigrateReport { inner })
}

/// Saves a graph's parameters and buffers, or named tensors, as safetensors
/// with optional string metadata. Atomic.
#[pyfunction]
#[pyo3(signature = (target, path, metadata = None))]
fn save_safetensors(
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    path: PathBuf,
    metadata: Option<&Bound<'_, PyDict>>,
) -> PyResult<()> {
    let md = metadata
        .map(|d| {
            d.iter()
                .map(|(k, v)| match (k.extract::<String>(), v.extract::<String>()) {
                    (Ok(k), Ok(v)) => Ok((k, v)),
                    _ => Err(raise(
                        Exc::InputType,
                        format!("save_safetensors(metadata): keys and values must be str, got {k:?}: {v:?}"),
                    )),
                })
                .collect::<PyResult<Vec<_>>>()
        })
        .transpose()?;
    let (mut params, buffers) = target_arg(target, "save_safetensors(target)")?.split();
    params.extend(buffers);
    py.allow_threads(move || ck::save_safetensors_file(&path, &params, md.as_deref()))
        .py()
}

/// Without a target: {name: tensor} (CPU, the file's dtypes, data order).
/// With a graph or named tensors: loads by name and returns a LoadReport.
#[pyfunction]
#[pyo3(signature = (path, target = None))]
fn load_safetensors(
    py: Python<'_>,
    path: PathBuf,
    target: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyObject> {
    match target {
        None => {
            let (ts, _) = py
                .allow_threads(move || ck::read_safetensors_file(&path))
                .py()?;
            let d = PyDict::new(py);
            for p in ts {
                d.set_item(p.name, to_py(py, &p.tensor)?)?;
            }
            Ok(d.into_any().unbind())
        }
        Some(t) => {
            let (mut params, buffers) = target_arg(t, "load_safetensors(target)")?.split();
            params.extend(buffers);
            let r = py
                .allow_threads(move || ck::load_safetensors_into(&path, &params))
                .py()?;
            Ok(Py::new(py, PyLoadReport::from(r))?.into_any())
        }
    }
}

/// The `__metadata__` map of a safetensors file ({} when absent).
#[pyfunction]
fn safetensors_metadata(py: Python<'_>, path: PathBuf) -> PyResult<Vec<(String, String)>> {
    py.allow_threads(move || ck::safetensors_metadata(&path))
        .py()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FDL_FORMAT_VERSION", ck::FORMAT_VERSION)?;
    m.add_class::<PyLoadReport>()?;
    m.add_class::<PyMigrateReport>()?;
    m.add_function(wrap_pyfunction!(save_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint_keys, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint_version, m)?)?;
    m.add_function(wrap_pyfunction!(migrate_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(save_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(load_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(safetensors_metadata, m)?)?;
    Ok(())
}
