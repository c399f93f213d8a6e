//! The `init_*` functions over `crate::nn::init`.

use super::prelude::*;

fn shape_arg(ob: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(v) = ob.extract::<i64>() {
        return Ok(vec![v]);
    }
    ob.extract::<Vec<i64>>().map_err(|_| {
        raise(
            Exc::InputType,
            format!("shape: expected a sequence of ints, got {ob}"),
        )
    })
}

fn init_out(py: Python<'_>, t: crate::Result<Tensor>) -> PyResult<PyObject> {
    to_py(py, &t.py()?)
}

/// kaiming_uniform(shape, fan_in, a=0.0, device=None): U(±√(6/((1+a²)·fan_in))).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, a = 0.0, device = None))]
fn init_kaiming_uniform(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    a: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::kaiming_uniform(&shape_arg(shape)?, fan_in, a, device_arg(device)?),
    )
}

/// kaiming_normal(shape, fan_in, a=0.0, device=None): N(0, 2/((1+a²)·fan_in)).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, a = 0.0, device = None))]
fn init_kaiming_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    a: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::kaiming_normal(&shape_arg(shape)?, fan_in, a, device_arg(device)?),
    )
}

/// xavier_uniform(shape, fan_in, fan_out, gain=1.0, device=None).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, fan_out, gain = 1.0, device = None))]
fn init_xavier_uniform(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    fan_out: i64,
    gain: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::xavier_uniform(
            &shape_arg(shape)?,
            fan_in,
            fan_out,
            gain,
            device_arg(device)?,
        ),
    )
}

/// xavier_normal(shape, fan_in, fan_out, gain=1.0, device=None).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, fan_out, gain = 1.0, device = None))]
fn init_xavier_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    fan_out: i64,
    gain: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::xavier_normal(
            &shape_arg(shape)?,
            fan_in,
            fan_out,
            gain,
            device_arg(device)?,
        ),
    )
}

/// orthogonal(shape, gain=1.0, device=None).
#[pyfunction]
#[pyo3(signature = (shape, gain = 1.0, device = None))]
fn init_orthogonal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    gain: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::orthogonal(&shape_arg(shape)?, gain, device_arg(device)?),
    )
}

/// trunc_normal(shape, mean=0, std=1, a=-2, b=2, device=None); bounds in std units.
#[pyfunction]
#[pyo3(signature = (shape, mean = 0.0, std = 1.0, a = -2.0, b = 2.0, device = None))]
fn init_trunc_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::trunc_normal(&shape_arg(shape)?, mean, std, a, b, device_arg(device)?),
    )
}

/// uniform(shape, low=0, high=1, device=None).
#[pyfunction]
#[pyo3(signature = (shape, low = 0.0, high = 1.0, device = None))]
fn init_uniform(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    low: f64,
    high: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::uniform(&shape_arg(shape)?, low, high, device_arg(device)?),
    )
}

/// normal(shape, mean=0, std=1, device=None).
#[pyfunction]
#[pyo3(signature = (shape, mean = 0.0, std = 1.0, device = None))]
fn init_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    mean: f64,
    std: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::normal(&shape_arg(shape)?, mean, std, device_arg(device)?),
    )
}

/// uniform_bias(shape, fan_in, device=None): U(±1/√fan_in).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, device = None))]
fn init_uniform_bias(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::uniform_bias(&shape_arg(shape)?, fan_in, device_arg(device)?),
    )
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(init_kaiming_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(init_kaiming_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_xavier_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(init_xavier_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_orthogonal, m)?)?;
    m.add_function(wrap_pyfunction!(init_trunc_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(init_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_uniform_bias, m)?)?;
    Ok(())
}
