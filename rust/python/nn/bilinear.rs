//! Bilinear over `crate::nn::bilinear`.

use super::prelude::*;

/// Bilinear(in1_features, in2_features, out_features, bias=True): `m(x1, x2)`.
#[pyclass(name = "Bilinear", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyBilinear {
    inner: Arc<nn::Bilinear>,
}

#[pymethods]
impl PyBilinear {
    #[new]
    #[pyo3(signature = (in1_features, in2_features, out_features, bias = true, device = None))]
    fn new(
        in1_features: i64,
        in2_features: i64,
        out_features: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(
            nn::Bilinear::new(
                in1_features,
                in2_features,
                out_features,
                bias,
                device_arg(device)?,
            )
            .py()?,
        );
        Ok(base(m.clone()).add_subclass(PyBilinear { inner: m }))
    }

    /// bilinear(x1, x2); with one input, bilinear(x1, x1).
    #[pyo3(signature = (input1, input2 = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        input1: &Bound<'_, PyAny>,
        input2: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let a = tensor_arg(input1, "input1")?;
        let b = match input2 {
            Some(b) => tensor_arg(b, "input2")?,
            None => a.shallow_clone(),
        };
        let out = self.inner.forward_bilinear(&a, &b).py()?;
        to_py(py, &out)
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBilinear>()?;
    Ok(())
}
