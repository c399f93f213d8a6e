//! The graph's module tree for `torch.nn.Module`'s walks (`named_modules`,
//! `get_submodule`): which module each node runs, under the prefix its
//! parameters are named by. Modules are identified by their core handle's
//! address; Python maps those keys to the layer objects it built the graph from.

use std::sync::Arc;

use pyo3::prelude::*;

use super::exec::PyGraph;
use crate::nn::Module;
use crate::python::nn::{PyCallable, PyModuleBase};

fn key(m: &Arc<dyn Module>) -> usize {
    Arc::as_ptr(m) as *const () as usize
}

/// `(key, object, parts)`: the Python object when the node calls
/// one, else None; `parts` describe a composite's modules (loop body, gate
/// router and experts, ...) in their order; a graph's own come from its object.
fn describe(py: Python<'_>, m: &Arc<dyn Module>) -> PyResult<PyObject> {
    let obj = m
        .as_any()
        .and_then(|a| a.downcast_ref::<PyCallable>())
        .map(|c| c.object().clone_ref(py));
    let parts = if obj.is_none() && m.as_graph().is_none() {
        m.sub_modules()
            .iter()
            .map(|s| describe(py, s))
            .collect::<PyResult<Vec<_>>>()?
    } else {
        Vec::new()
    };
    Ok((key(m), obj, parts).into_pyobject(py)?.into_any().unbind())
}

/// `_node_modules(graph)`: `[(name, (key, object, parts))]`, one
/// per module the graph's nodes run, in execution order.
#[pyfunction]
pub(super) fn _node_modules(
    py: Python<'_>,
    graph: PyRef<'_, PyGraph>,
) -> PyResult<Vec<(String, PyObject)>> {
    graph
        .inner
        .node_modules()
        .iter()
        .map(|(name, m)| Ok((name.clone(), describe(py, m)?)))
        .collect()
}

/// `_module_key(obj)`: the key of a core module (a layer's `_core`, a
/// graph), or None for anything else.
#[pyfunction]
pub(super) fn _module_key(ob: &Bound<'_, PyAny>) -> Option<usize> {
    ob.downcast::<PyModuleBase>()
        .ok()
        .map(|m| key(&m.get().inner))
}
