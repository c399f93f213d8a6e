//! MultiheadAttention over `crate::nn::attention`.

use super::prelude::*;

/// MultiheadAttention(embed_dim, num_heads, bias=True), batch first.
#[pyclass(name = "MultiheadAttention", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyMha {
    inner: Arc<nn::MultiheadAttention>,
}

#[pymethods]
impl PyMha {
    #[new]
    #[pyo3(signature = (embed_dim, num_heads, bias = true, device = None))]
    fn new(
        embed_dim: i64,
        num_heads: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(
            nn::MultiheadAttention::new(embed_dim, num_heads, bias, device_arg(device)?).py()?,
        );
        Ok(base(m.clone()).add_subclass(PyMha { inner: m }))
    }

    /// Attention of query [B, L, E] over key, value [B, S, E]; returns the output.
    #[pyo3(signature = (query, key, value, attn_mask = None, key_padding_mask = None))]
    fn forward_ext(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        attn_mask: Option<&Bound<'_, PyAny>>,
        key_padding_mask: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let q = tensor_arg(query, "query")?;
        let k = tensor_arg(key, "key")?;
        let v = tensor_arg(value, "value")?;
        let am = attn_mask.map(|m| tensor_arg(m, "attn_mask")).transpose()?;
        let kp = key_padding_mask
            .map(|m| tensor_arg(m, "key_padding_mask"))
            .transpose()?;
        let out = self
            .inner
            .forward_ext(&q, &k, &v, am.as_ref(), kp.as_ref())
            .py()?;
        to_py(py, &out)
    }

    #[getter]
    fn embed_dim(&self) -> i64 {
        self.inner.embed_dim()
    }
    #[getter]
    fn num_heads(&self) -> i64 {
        self.inner.num_heads()
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMha>()?;
    Ok(())
}
