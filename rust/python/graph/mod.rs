//! Graphs over `crate::graph`, one file per core module: the builder, the
//! built graph, observation classes and the built-in nodes.

mod builder;
mod builtins;
mod exec;
mod observe;
mod tree;

use pyo3::prelude::*;

pub use exec::PyGraph;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<builder::PyMergeOp>()?;
    m.add_class::<builder::PyFlowBuilder>()?;
    m.add_class::<builder::PyLoopBuilder>()?;
    m.add_class::<builder::PyMapBuilder>()?;
    m.add_class::<PyGraph>()?;
    m.add_function(wrap_pyfunction!(exec::_set_graph_type, m)?)?;
    m.add_function(wrap_pyfunction!(tree::_node_modules, m)?)?;
    m.add_function(wrap_pyfunction!(tree::_module_key, m)?)?;
    builtins::register(m)?;
    observe::register(m)
}
