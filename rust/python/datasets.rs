//! Data set parsers and folder readers (`crate::datasets`) for the Python
//! classes in `ferrotorch.datasets`; every read runs with the GIL released.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::IntoPyResult;
use super::tensor::to_py;
use crate::datasets;

type Loaded = (PyObject, PyObject, Vec<String>);

/// uint8 images, int64 labels and the files read, as Python objects.
fn loaded(py: Python<'_>, f: datasets::Found) -> PyResult<Loaded> {
    let files = f.files.iter().map(|p| p.display().to_string()).collect();
    Ok((to_py(py, &f.images)?, to_py(py, &f.labels)?, files))
}

/// MNIST from the IDX files' bytes (gzipped or not): images [N, 1, 28, 28]
/// float32 in [0, 1] and labels [N] int64.
#[pyfunction]
fn mnist_parse(
    py: Python<'_>,
    images: &Bound<'_, PyBytes>,
    labels: &Bound<'_, PyBytes>,
) -> PyResult<(PyObject, PyObject)> {
    let (i, l) = (images.as_bytes(), labels.as_bytes());
    let m = py.allow_threads(|| datasets::Mnist::parse(i, l)).py()?;
    Ok((to_py(py, &m.images)?, to_py(py, &m.labels)?))
}

/// MNIST's four standard IDX files from a folder, read with the GIL released.
#[pyfunction]
fn mnist_read(py: Python<'_>, root: PathBuf, train: bool) -> PyResult<Loaded> {
    let f = py
        .allow_threads(|| datasets::read_mnist(&root, train))
        .py()?;
    loaded(py, f)
}

/// CIFAR-10 from binary batch files' bytes: images [N, 3, 32, 32] float32 in
/// [0, 1] and labels [N] int64.
#[pyfunction]
fn cifar10_parse(py: Python<'_>, batches: Vec<Vec<u8>>) -> PyResult<(PyObject, PyObject)> {
    let c = py
        .allow_threads(|| {
            let refs: Vec<&[u8]> = batches.iter().map(|b| b.as_slice()).collect();
            datasets::Cifar10::parse(&refs)
        })
        .py()?;
    Ok((to_py(py, &c.images)?, to_py(py, &c.labels)?))
}

/// CIFAR-10's standard batches (binary or python pickle) from a folder, read
/// with the GIL released.
#[pyfunction]
fn cifar10_read(py: Python<'_>, root: PathBuf, train: bool) -> PyResult<Loaded> {
    let f = py
        .allow_threads(|| datasets::read_cifar10(&root, train))
        .py()?;
    loaded(py, f)
}

/// A UTF-8 text file (or a folder's input.txt) and the file read.
#[pyfunction]
fn text_read(py: Python<'_>, path: PathBuf) -> PyResult<(String, String)> {
    let (text, file) = py.allow_threads(|| datasets::read_text(&path)).py()?;
    Ok((text, file.display().to_string()))
}

/// Character-level text in windows: `data` and `targets` (shifted by one),
/// both [N, seq_len] int64, over the sorted character vocabulary.
#[pyclass(name = "Shakespeare", module = "ferrotorch._core", frozen)]
pub struct PyShakespeare {
    // A frozen pyclass must be Sync; tch::Tensor is only Send.
    inner: Mutex<datasets::Shakespeare>,
}

impl PyShakespeare {
    fn get(&self) -> MutexGuard<'_, datasets::Shakespeare> {
        // Only read after construction: a poisoned lock is still valid.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyShakespeare {
    #[staticmethod]
    fn parse(py: Python<'_>, text: &str, seq_len: usize) -> PyResult<Self> {
        let inner = py
            .allow_threads(|| datasets::Shakespeare::parse(text, seq_len))
            .py()?;
        Ok(PyShakespeare {
            inner: Mutex::new(inner),
        })
    }
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self.get().data)
    }
    #[getter]
    fn targets(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self.get().targets)
    }
    #[getter]
    fn vocab_size(&self) -> usize {
        self.get().vocab_size()
    }
    #[getter]
    fn vocab(&self) -> String {
        self.get().vocab.iter().collect()
    }
    fn __len__(&self) -> usize {
        self.get().data.size().first().copied().unwrap_or(0) as usize
    }
}

/// A permutation of range(n) from floDl's generator seeded with `seed`.
#[pyfunction]
fn permutation(n: usize, seed: u64) -> Vec<i64> {
    crate::data::permutation(n, seed)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mnist_parse, m)?)?;
    m.add_function(wrap_pyfunction!(mnist_read, m)?)?;
    m.add_function(wrap_pyfunction!(cifar10_parse, m)?)?;
    m.add_function(wrap_pyfunction!(cifar10_read, m)?)?;
    m.add_function(wrap_pyfunction!(text_read, m)?)?;
    m.add("CIFAR10_CLASSES", datasets::Cifar10::CLASS_NAMES.to_vec())?;
    m.add_class::<PyShakespeare>()?;
    m.add_function(wrap_pyfunction!(permutation, m)?)?;
    Ok(())
}
