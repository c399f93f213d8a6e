//! Activations over `crate::nn::activation`.

use super::prelude::*;

/// GELU(approximate="none" | "tanh").
#[pyclass(name = "GELU", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyGelu;

#[pymethods]
impl PyGelu {
    #[new]
    #[pyo3(signature = (approximate = "none"))]
    fn new(approximate: &str) -> PyResult<PyClassInitializer<Self>> {
        let approximate = match approximate {
            "none" => GeluApprox::None,
            "tanh" => GeluApprox::Tanh,
            a => {
                return Err(raise(
                    Exc::Config,
                    format!("GELU: approximate must be 'none' or 'tanh', got '{a}'"),
                ))
            }
        };
        Ok(base(Arc::new(Gelu { approximate })).add_subclass(PyGelu))
    }
}

/// ReLU: max(x, 0).
#[pyclass(name = "ReLU", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyRelu;

#[pymethods]
impl PyRelu {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        base(Arc::new(Activation::Relu)).add_subclass(PyRelu)
    }
}

/// Defines a parameter-free activation class.
macro_rules! unit_module {
    ($py:ident, $name:literal, $inner:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            fn new() -> PyClassInitializer<Self> {
                base(Arc::new($inner)).add_subclass($py)
            }
        }
    };
}

unit_module!(
    PySigmoid,
    "Sigmoid",
    Activation::Sigmoid,
    "Sigmoid: 1/(1+e^-x)."
);
unit_module!(PyTanh, "Tanh", Activation::Tanh, "Tanh.");
unit_module!(PySilu, "SiLU", Activation::Silu, "SiLU: x·sigmoid(x).");
unit_module!(
    PyMish,
    "Mish",
    Activation::Mish,
    "Mish: x·tanh(softplus(x))."
);
unit_module!(
    PySelu,
    "SELU",
    Activation::Selu,
    "SELU with torch's constants."
);
unit_module!(
    PyHardswish,
    "Hardswish",
    Activation::Hardswish,
    "Hardswish."
);
unit_module!(
    PyHardsigmoid,
    "Hardsigmoid",
    Activation::Hardsigmoid,
    "Hardsigmoid."
);

layer!(
    /// LeakyReLU(negative_slope=0.01).
    PyLeakyRelu,
    "LeakyReLU",
    (negative_slope = 0.01),
    |negative_slope: f64| nn::LeakyRelu {
        slope: negative_slope,
    }
);

layer!(
    /// ELU(alpha=1.0).
    PyElu, "ELU", (alpha = 1.0), |alpha: f64| nn::Elu { alpha });

layer!(
    /// Softplus(beta=1.0, threshold=20.0).
    PySoftplus,
    "Softplus",
    (beta = 1.0, threshold = 20.0),
    |beta: f64, threshold: f64| {
        if beta == 0.0 || beta.is_nan() {
            return Err(raise(
                Exc::Config,
                format!("Softplus: beta must be non-zero, got {beta}"),
            ));
        }
        nn::Softplus { beta, threshold }
    }
);

layer!(
    /// Softmax(dim).
    PySoftmax, "Softmax", (dim), |dim: i64| nn::Softmax { dim });

layer!(
    /// LogSoftmax(dim).
    PyLogSoftmax, "LogSoftmax", (dim), |dim: i64| {
    nn::LogSoftmax { dim }
});

layer!(
    /// PReLU(num_parameters=1, init=0.25).
    PyPRelu,
    "PReLU",
    (num_parameters = 1, init = 0.25, device = None),
    |num_parameters: i64, init: f64, device: Option<&str>| nn::PRelu::new(
        num_parameters,
        init,
        device_arg(device)?
    )
    .py()?
);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySigmoid>()?;
    m.add_class::<PyTanh>()?;
    m.add_class::<PySilu>()?;
    m.add_class::<PyMish>()?;
    m.add_class::<PySelu>()?;
    m.add_class::<PyHardswish>()?;
    m.add_class::<PyHardsigmoid>()?;
    m.add_class::<PyLeakyRelu>()?;
    m.add_class::<PyElu>()?;
    m.add_class::<PySoftplus>()?;
    m.add_class::<PySoftmax>()?;
    m.add_class::<PyLogSoftmax>()?;
    m.add_class::<PyPRelu>()?;
    m.add_class::<PyGelu>()?;
    m.add_class::<PyRelu>()?;
    Ok(())
}
