//! AddParameter over `crate::nn::add_parameter`.

use super::prelude::*;

/// AddParameter(*shape): adds a learned tensor `weight` of that shape to the
/// input, broadcasting (`AddParameter(1, S, D)` or `AddParameter((1, S, D))`);
/// the weight starts at zeros.
#[pyclass(name = "AddParameter", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyAddParameter {
    inner: Arc<nn::AddParameter>,
}

/// The shape from varargs: sizes, or one sequence of sizes.
fn shape_arg(shape: &Bound<'_, PyTuple>) -> PyResult<Vec<i64>> {
    let bad = || {
        raise(
            Exc::InputType,
            format!("AddParameter: shape must be ints or one sequence of ints, got {shape}"),
        )
    };
    if shape.len() == 1 {
        let first = shape.get_item(0)?;
        if first.extract::<i64>().is_err() {
            return first.extract::<Vec<i64>>().map_err(|_| bad());
        }
    }
    shape.extract::<Vec<i64>>().map_err(|_| bad())
}

#[pymethods]
impl PyAddParameter {
    #[new]
    #[pyo3(signature = (*shape, device = None))]
    fn new(shape: &Bound<'_, PyTuple>, device: Option<&str>) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(nn::AddParameter::new(&shape_arg(shape)?, device_arg(device)?).py()?);
        Ok(base(m.clone()).add_subclass(PyAddParameter { inner: m }))
    }
    #[getter]
    fn weight(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self.inner.weight())
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAddParameter>()?;
    Ok(())
}
