//! FlowBuilder, LoopBuilder, MapBuilder and MergeOp over
//! `crate::graph::builder`: argument conversion only.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use super::exec::graph_object;
use crate::graph::{FlowBuilder, LoopKind, MapMode, MergeOp};
use crate::nn::Module;
use crate::python::errors::{raise, Exc, IntoPyResult};
use crate::python::nn::module_arg;

fn modules_arg(ms: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Arc<dyn Module>>> {
    ms.try_iter()
        .map_err(|_| {
            raise(
                Exc::InputType,
                format!("{what}: expected a list of modules"),
            )
        })?
        .enumerate()
        .map(|(i, m)| module_arg(&m?, &format!("{what}[{i}]")))
        .collect()
}

/// How `.merge()` combines streams: `MergeOp.ADD` or `MergeOp.MEAN`.
#[pyclass(name = "MergeOp", module = "ferrotorch._core", frozen, eq, eq_int)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PyMergeOp {
    #[pyo3(name = "ADD")]
    Add,
    #[pyo3(name = "MEAN")]
    Mean,
}

/// floDl's fluent graph builder. Methods chain; errors surface at build().
#[pyclass(name = "FlowBuilder", module = "ferrotorch._core", frozen)]
pub struct PyFlowBuilder {
    inner: Mutex<FlowBuilder>,
}

impl PyFlowBuilder {
    fn with(slf: PyRef<'_, Self>, f: impl FnOnce(&mut FlowBuilder)) -> PyRef<'_, Self> {
        match slf.inner.lock() {
            Ok(mut b) => f(&mut b),
            Err(p) => f(&mut p.into_inner()),
        }
        slf
    }
}

#[pymethods]
impl PyFlowBuilder {
    /// FlowBuilder(m): a graph whose entry node is m (identity if omitted).
    #[new]
    #[pyo3(signature = (module = None))]
    fn py_new(module: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let b = match module {
            Some(m) => FlowBuilder::from_module(module_arg(m, "FlowBuilder(module)")?),
            None => FlowBuilder::new(),
        };
        Ok(PyFlowBuilder {
            inner: Mutex::new(b),
        })
    }

    /// FlowBuilder.from_(m): floDl's `FlowBuilder::from` (`from` is a keyword).
    #[staticmethod]
    fn from_(module: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::py_new(Some(module))
    }

    /// FlowBuilder.new(): an identity entry node.
    #[staticmethod]
    #[pyo3(name = "new")]
    fn new_identity() -> Self {
        PyFlowBuilder {
            inner: Mutex::new(FlowBuilder::new()),
        }
    }

    /// stream -> m -> stream.
    fn through<'py>(
        slf: PyRef<'py, Self>,
        module: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        let m = module_arg(module, "through(module)")?;
        Ok(Self::with(slf, |b| {
            b.through(m);
        }))
    }

    /// Residual: stream + m(stream).
    fn also<'py>(slf: PyRef<'py, Self>, module: &Bound<'py, PyAny>) -> PyResult<PyRef<'py, Self>> {
        let m = module_arg(module, "also(module)")?;
        Ok(Self::with(slf, |b| {
            b.also(m);
        }))
    }

    /// skip(stream) + main(stream).
    fn also_with<'py>(
        slf: PyRef<'py, Self>,
        skip: &Bound<'py, PyAny>,
        main: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        let (s, m) = (
            module_arg(skip, "also_with(skip)")?,
            module_arg(main, "also_with(main)")?,
        );
        Ok(Self::with(slf, |b| {
            b.also_with(s, m);
        }))
    }

    /// Gradient checkpointing for the module just added (every branch after
    /// split): its activations are recomputed in backward instead of kept.
    /// Hash, names and files are unchanged.
    fn checkpoint(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        Self::with(slf, |b| {
            b.checkpoint();
        })
    }

    /// A side branch on the stream; the stream is unchanged and the next
    /// `.tag()` names the branch's output.
    fn fork<'py>(slf: PyRef<'py, Self>, module: &Bound<'py, PyAny>) -> PyResult<PyRef<'py, Self>> {
        let m = module_arg(module, "fork(module)")?;
        Ok(Self::with(slf, |b| {
            b.fork(m);
        }))
    }

    /// One open stream per module, each fed the current stream.
    fn split<'py>(
        slf: PyRef<'py, Self>,
        modules: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        let ms = modules_arg(modules, "split")?;
        Ok(Self::with(slf, |b| {
            b.split(ms);
        }))
    }

    /// Joins open streams: MergeOp.ADD (sum) or MergeOp.MEAN.
    #[pyo3(signature = (op = PyMergeOp::Add))]
    fn merge(slf: PyRef<'_, Self>, op: PyMergeOp) -> PyRef<'_, Self> {
        Self::with(slf, |b| {
            b.merge(if op == PyMergeOp::Add {
                MergeOp::Add
            } else {
                MergeOp::Mean
            });
        })
    }

    /// Names the current stream (or the pending fork output).
    fn tag<'py>(slf: PyRef<'py, Self>, name: &str) -> PyRef<'py, Self> {
        Self::with(slf, |b| {
            b.tag(name);
        })
    }

    /// Tags every open stream `name_0, name_1, ...`.
    fn tag_group<'py>(slf: PyRef<'py, Self>, name: &str) -> PyRef<'py, Self> {
        Self::with(slf, |b| {
            b.tag_group(name);
        })
    }

    /// Auxiliary graph inputs: graph(x, aux1, ...) afterwards.
    #[pyo3(signature = (*names))]
    fn input(slf: PyRef<'_, Self>, names: Vec<String>) -> PyRef<'_, Self> {
        Self::with(slf, |b| {
            b.input(&names);
        })
    }

    /// Wires tags into the target as named inputs (backward or forward refs).
    #[pyo3(signature = (*tags))]
    fn using(slf: PyRef<'_, Self>, tags: Vec<String>) -> PyRef<'_, Self> {
        Self::with(slf, |b| {
            b.using(&tags);
        })
    }

    /// Starts a loop over `body`: finish with `.for_n(n)`, `.while_cond(c, max)`
    /// or `.until_cond(c, max)`.
    fn loop_body(
        slf: Py<Self>,
        py: Python<'_>,
        body: &Bound<'_, PyAny>,
    ) -> PyResult<PyLoopBuilder> {
        Ok(PyLoopBuilder {
            builder: slf.clone_ref(py),
            body: module_arg(body, "loop_body(body)")?,
        })
    }

    /// Soft routing over experts weighted by the router's output.
    fn gate<'py>(
        slf: PyRef<'py, Self>,
        router: &Bound<'py, PyAny>,
        experts: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        let r = module_arg(router, "gate(router)")?;
        let e = modules_arg(experts, "gate(experts)")?;
        Ok(Self::with(slf, |b| {
            b.gate(r, e);
        }))
    }

    /// Hard routing: only the branch the router selects runs.
    fn switch<'py>(
        slf: PyRef<'py, Self>,
        router: &Bound<'py, PyAny>,
        branches: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        let r = module_arg(router, "switch(router)")?;
        let e = modules_arg(branches, "switch(branches)")?;
        Ok(Self::with(slf, |b| {
            b.switch(r, e);
        }))
    }

    /// Starts a map over `body`: `.each()`, `.batched().each()`, `.over(tag)`,
    /// `.slices(n)`.
    fn map(slf: Py<Self>, py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<PyMapBuilder> {
        Ok(PyMapBuilder {
            builder: slf.clone_ref(py),
            body: module_arg(body, "map(body)")?,
            batched: false,
        })
    }

    /// Labels the graph (for trees and paths; not hashed).
    fn label<'py>(slf: PyRef<'py, Self>, name: &str) -> PyRef<'py, Self> {
        Self::with(slf, |b| {
            b.label(name);
        })
    }

    /// Hides a tag from path resolution in parent graphs.
    fn internal<'py>(slf: PyRef<'py, Self>, tag: &str) -> PyRef<'py, Self> {
        Self::with(slf, |b| {
            b.internal(tag);
        })
    }

    /// Validates the recorded graph and returns it (GraphError otherwise).
    #[pyo3(signature = (verbose = false))]
    fn build(&self, py: Python<'_>, verbose: bool) -> PyResult<PyObject> {
        let g = match self.inner.lock() {
            Ok(b) => b.build(),
            Err(p) => p.into_inner().build(),
        }
        .py()?;
        if verbose {
            println!("{}", g.tree_summary());
        }
        let g = Arc::new(g);
        graph_object(py, g)
    }
}

impl PyFlowBuilder {
    fn apply(b: &Py<Self>, py: Python<'_>, f: impl FnOnce(&mut FlowBuilder)) -> Py<Self> {
        let r = b.bind(py).get();
        match r.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
        b.clone_ref(py)
    }
}

/// `builder.loop_body(body)`: choose how the loop ends.
#[pyclass(name = "LoopBuilder", module = "ferrotorch._core", frozen)]
pub struct PyLoopBuilder {
    builder: Py<PyFlowBuilder>,
    body: Arc<dyn Module>,
}

#[pymethods]
impl PyLoopBuilder {
    /// Runs the body n times.
    fn for_n(&self, py: Python<'_>, n: usize) -> Py<PyFlowBuilder> {
        let body = self.body.clone();
        PyFlowBuilder::apply(&self.builder, py, |b| {
            b.loop_body(body, LoopKind::ForN(n));
        })
    }

    /// Checks `cond(state)` before each iteration; halts when its first
    /// element is > 0; at most `max_iter` iterations.
    fn while_cond(
        &self,
        py: Python<'_>,
        cond: &Bound<'_, PyAny>,
        max_iter: usize,
    ) -> PyResult<Py<PyFlowBuilder>> {
        let (body, c) = (self.body.clone(), module_arg(cond, "while_cond(cond)")?);
        Ok(PyFlowBuilder::apply(&self.builder, py, |b| {
            b.loop_body(body, LoopKind::While(c, max_iter));
        }))
    }

    /// Body first, then the check; runs 1..=max_iter times.
    fn until_cond(
        &self,
        py: Python<'_>,
        cond: &Bound<'_, PyAny>,
        max_iter: usize,
    ) -> PyResult<Py<PyFlowBuilder>> {
        let (body, c) = (self.body.clone(), module_arg(cond, "until_cond(cond)")?);
        Ok(PyFlowBuilder::apply(&self.builder, py, |b| {
            b.loop_body(body, LoopKind::Until(c, max_iter));
        }))
    }
}

/// `builder.map(body)`: choose how the body is applied.
#[pyclass(name = "MapBuilder", module = "ferrotorch._core")]
pub struct PyMapBuilder {
    builder: Py<PyFlowBuilder>,
    body: Arc<dyn Module>,
    batched: bool,
}

#[pymethods]
impl PyMapBuilder {
    /// Applies the body to the whole batch at once (then `.each()`/`.slices(n)`).
    fn batched(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        slf.batched = true;
        slf
    }

    /// Per row of dim 0 (or once, batched), results concatenated on dim 0.
    fn each(&self, py: Python<'_>) -> Py<PyFlowBuilder> {
        let (body, mode) = (
            self.body.clone(),
            if self.batched {
                MapMode::Batched
            } else {
                MapMode::Each
            },
        );
        PyFlowBuilder::apply(&self.builder, py, |b| {
            b.map(body, mode, None);
        })
    }

    /// Like each(), over the output of a tag defined earlier.
    fn over(&self, py: Python<'_>, tag: &str) -> Py<PyFlowBuilder> {
        let (body, mode) = (
            self.body.clone(),
            if self.batched {
                MapMode::Batched
            } else {
                MapMode::Each
            },
        );
        PyFlowBuilder::apply(&self.builder, py, |b| {
            b.map(body, mode, Some(tag));
        })
    }

    /// [B, D] -> n slices of D/n per row -> body -> [B, out·n].
    fn slices(&self, py: Python<'_>, n: i64) -> Py<PyFlowBuilder> {
        let (body, batched) = (self.body.clone(), self.batched);
        PyFlowBuilder::apply(&self.builder, py, |b| {
            b.map(body, MapMode::Slices { n, batched }, None);
        })
    }
}
