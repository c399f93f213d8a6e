//! Embedding and EmbeddingBag over `crate::nn::embedding`.

use super::prelude::*;

layer!(
    /// Embedding(num_embeddings, embedding_dim, padding_idx=None).
    PyEmbedding,
    "Embedding",
    (
        num_embeddings,
        embedding_dim,
        padding_idx = None,
        device = None
    ),
    |num_embeddings: i64, embedding_dim: i64, padding_idx: Option<i64>, device: Option<&str>| {
        nn::Embedding::new(
            num_embeddings,
            embedding_dim,
            padding_idx,
            device_arg(device)?,
        )
        .py()?
    }
);

/// EmbeddingBag(num_embeddings, embedding_dim, mode="mean").
#[pyclass(name = "EmbeddingBag", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyEmbeddingBag {
    inner: Arc<nn::EmbeddingBag>,
}

#[pymethods]
impl PyEmbeddingBag {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, mode = "mean", device = None))]
    fn new(
        num_embeddings: i64,
        embedding_dim: i64,
        mode: &str,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mode = match mode {
            "sum" => nn::BagMode::Sum,
            "mean" => nn::BagMode::Mean,
            "max" => nn::BagMode::Max,
            m => {
                return Err(raise(
                    Exc::Config,
                    format!("EmbeddingBag: mode must be 'sum', 'mean' or 'max', got '{m}'"),
                ))
            }
        };
        let m = Arc::new(
            nn::EmbeddingBag::new(num_embeddings, embedding_dim, mode, device_arg(device)?).py()?,
        );
        Ok(base(m.clone()).add_subclass(PyEmbeddingBag { inner: m }))
    }

    /// Bags of 1-D `indices` starting at the positions in `offsets`.
    fn forward_bag(
        &self,
        py: Python<'_>,
        indices: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
    ) -> PyResult<PyObject> {
        let i = tensor_arg(indices, "indices")?;
        let o = tensor_arg(offsets, "offsets")?;
        let out = self.inner.forward_bag(&i, &o).py()?;
        to_py(py, &out)
    }

    /// `bag(input)` for 2-D bags, `bag(input, offsets)` for 1-D input.
    #[pyo3(signature = (input, offsets = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        offsets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let x = tensor_arg(input, "input")?;
        let out = match offsets {
            Some(o) => self.inner.forward_bag(&x, &tensor_arg(o, "offsets")?),
            None => nn::Module::forward(&*self.inner, &x),
        }
        .py()?;
        to_py(py, &out)
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEmbedding>()?;
    m.add_class::<PyEmbeddingBag>()?;
    Ok(())
}
