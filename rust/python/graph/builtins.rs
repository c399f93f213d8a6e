//! floDl's built-in graph nodes (`crate::graph::builtins`) as classes.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::graph::builtins::{
    ArgmaxSelector, FixedSelector, LearnedHalt, Reshape, Router, StateAdd, ThresholdHalt,
};
use crate::nn::Module;
use crate::python::errors::IntoPyResult;
use crate::python::nn::PyModuleBase;

macro_rules! builtin {
    ($rust:ident, $py:literal, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $py, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $rust;
    };
}

builtin!(
    PyStateAdd,
    "StateAdd",
    "x + Σrefs (identity without refs): the usual forward-ref target."
);
builtin!(
    PyReshape,
    "Reshape",
    "Reshape(shape): reshape to a fixed shape (one -1 allowed)."
);
builtin!(
    PySoftmaxRouter,
    "SoftmaxRouter",
    "SoftmaxRouter(dim, n): Linear(dim, n) then softmax (gate weights)."
);
builtin!(
    PySigmoidRouter,
    "SigmoidRouter",
    "SigmoidRouter(dim, n): Linear(dim, n) then sigmoid."
);
builtin!(
    PyFixedSelector,
    "FixedSelector",
    "FixedSelector(i): always selects branch i."
);
builtin!(
    PyArgmaxSelector,
    "ArgmaxSelector",
    "ArgmaxSelector(dim, n): Linear then argmax of the flattened logits."
);
builtin!(
    PyThresholdHalt,
    "ThresholdHalt",
    "ThresholdHalt(t): [max(x) - t]; a loop halts when positive."
);
builtin!(
    PyLearnedHalt,
    "LearnedHalt",
    "LearnedHalt(dim): Linear(dim, 1) halting score."
);

fn base(m: Arc<dyn Module>) -> PyClassInitializer<PyModuleBase> {
    PyClassInitializer::from(PyModuleBase { inner: m })
}

#[pymethods]
impl PyStateAdd {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        base(Arc::new(StateAdd)).add_subclass(PyStateAdd)
    }
}

#[pymethods]
impl PyReshape {
    #[new]
    fn new(shape: Vec<i64>) -> PyClassInitializer<Self> {
        base(Arc::new(Reshape(shape))).add_subclass(PyReshape)
    }
}

#[pymethods]
impl PySoftmaxRouter {
    #[new]
    fn new(dim: i64, n: i64) -> PyResult<PyClassInitializer<Self>> {
        Ok(base(Arc::new(Router::softmax(dim, n).py()?)).add_subclass(PySoftmaxRouter))
    }
}

#[pymethods]
impl PySigmoidRouter {
    #[new]
    fn new(dim: i64, n: i64) -> PyResult<PyClassInitializer<Self>> {
        Ok(base(Arc::new(Router::sigmoid(dim, n).py()?)).add_subclass(PySigmoidRouter))
    }
}

#[pymethods]
impl PyFixedSelector {
    #[new]
    fn new(index: i64) -> PyClassInitializer<Self> {
        base(Arc::new(FixedSelector(index))).add_subclass(PyFixedSelector)
    }
}

#[pymethods]
impl PyArgmaxSelector {
    #[new]
    fn new(dim: i64, n: i64) -> PyResult<PyClassInitializer<Self>> {
        Ok(base(Arc::new(ArgmaxSelector::new(dim, n).py()?)).add_subclass(PyArgmaxSelector))
    }
}

#[pymethods]
impl PyThresholdHalt {
    #[new]
    fn new(threshold: f64) -> PyClassInitializer<Self> {
        base(Arc::new(ThresholdHalt(threshold))).add_subclass(PyThresholdHalt)
    }
}

#[pymethods]
impl PyLearnedHalt {
    #[new]
    fn new(dim: i64) -> PyResult<PyClassInitializer<Self>> {
        Ok(base(Arc::new(LearnedHalt::new(dim).py()?)).add_subclass(PyLearnedHalt))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStateAdd>()?;
    m.add_class::<PyReshape>()?;
    m.add_class::<PySoftmaxRouter>()?;
    m.add_class::<PySigmoidRouter>()?;
    m.add_class::<PyFixedSelector>()?;
    m.add_class::<PyArgmaxSelector>()?;
    m.add_class::<PyThresholdHalt>()?;
    m.add_class::<PyLearnedHalt>()?;
    Ok(())
}
