//! FlowBuilder, Graph, MergeOp and the built-in nodes over `crate::graph`.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{raise, Exc, IntoPyResult};
use super::graph_observe::{tags_arg, values_arg, PyProfile, PyReduce, PyTrend, PyTrendGroup};
use super::nn::{module_arg, params_to_py, PyModuleBase};
use super::tensor::{tensor_arg, to_py};
use crate::graph::builtins::{
    ArgmaxSelector, FixedSelector, LearnedHalt, Reshape, Router, StateAdd, ThresholdHalt,
};
use crate::graph::{FlowBuilder, Graph, LoopKind, MapMode, MergeOp, PathKind};
use crate::nn::Module;

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

/// A built graph: call it like a function; it is also a Module (nestable).
/// `ferrotorch.Graph` subclasses it with `torch.nn.Module`.
#[pyclass(name = "Graph", module = "ferrotorch._core", extends = PyModuleBase, frozen, subclass)]
pub struct PyGraph {
    pub inner: Arc<Graph>,
}

impl PyGraph {
    fn me(&self) -> Arc<dyn Module> {
        self.inner.clone() as Arc<dyn Module>
    }
}

/// The Python class graphs are handed out as (`ferrotorch.Graph`, set at
/// import by `_set_graph_type`); the plain core class until then.
static GRAPH_TYPE: pyo3::sync::GILOnceCell<Py<pyo3::types::PyType>> =
    pyo3::sync::GILOnceCell::new();

/// `_set_graph_type(cls)`: graphs from `build()` and `subgraph()` are made
/// as `cls(core_graph)` (a subclass of the core Graph).
#[pyfunction]
fn _set_graph_type(py: Python<'_>, cls: Bound<'_, pyo3::types::PyType>) -> PyResult<()> {
    if !cls.is_subclass_of::<PyGraph>()? {
        return Err(raise(
            Exc::InputType,
            "_set_graph_type: expected a subclass of ferrotorch._core.Graph".into(),
        ));
    }
    GRAPH_TYPE
        .set(py, cls.unbind())
        .map_err(|_| raise(Exc::Config, "_set_graph_type: already set".into()))
}

/// A Python object for `g`, of the registered graph type.
fn graph_object(py: Python<'_>, g: Arc<Graph>) -> PyResult<PyObject> {
    let init = PyClassInitializer::from(PyModuleBase {
        inner: g.clone() as Arc<dyn Module>,
    })
    .add_subclass(PyGraph { inner: g });
    let core = Py::new(py, init)?;
    match GRAPH_TYPE.get(py) {
        Some(cls) => Ok(cls.bind(py).call1((core,))?.unbind()),
        None => Ok(core.into_any()),
    }
}

#[pymethods]
impl PyGraph {
    /// Graph(core): another handle on the same core graph (how
    /// `ferrotorch.Graph` objects are made; use FlowBuilder.build()).
    #[new]
    fn py_new(core: PyRef<'_, PyGraph>) -> PyClassInitializer<Self> {
        let g = core.inner.clone();
        PyClassInitializer::from(PyModuleBase {
            inner: g.clone() as Arc<dyn Module>,
        })
        .add_subclass(PyGraph { inner: g })
    }

    /// Runs the graph with each `originals[i]` (a parameter or buffer of
    /// the graph) read as `substitutes[i]` during this call, on this thread
    /// (torch.func.functional_call).
    #[pyo3(signature = (originals, substitutes, *inputs))]
    fn _forward_with(
        &self,
        py: Python<'_>,
        originals: Vec<Bound<'_, PyAny>>,
        substitutes: Vec<Bound<'_, PyAny>>,
        inputs: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        if originals.len() != substitutes.len() {
            return Err(raise(
                Exc::Config,
                format!(
                    "_forward_with: {} originals for {} substitutes",
                    originals.len(),
                    substitutes.len()
                ),
            ));
        }
        let mut pairs = Vec::with_capacity(originals.len());
        for (i, (o, s)) in originals.iter().zip(&substitutes).enumerate() {
            pairs.push((
                tensor_arg(o, &format!("original {i}"))?,
                tensor_arg(s, &format!("substitute {i}"))?,
            ));
        }
        let xs = inputs
            .iter()
            .enumerate()
            .map(|(i, x)| tensor_arg(x, &format!("input {i}")))
            .collect::<PyResult<Vec<_>>>()?;
        let g = self.inner.clone();
        // Same thread (allow_threads does not move it): the substitutes and
        // torch's thread-local transforms stay in force.
        let out = py
            .allow_threads(move || {
                crate::substitute::with_substitutes(&pairs, || g.forward_multi(&xs))
            })
            .py()?;
        to_py(py, &out)
    }

    /// The module tree as torch prints it, keyed by floDl node ids.
    fn __repr__(&self) -> String {
        self.inner.module_tree()
    }

    /// graph(x, *aux): runs the graph (one tensor per declared input).
    #[pyo3(signature = (*inputs))]
    fn __call__(&self, py: Python<'_>, inputs: Vec<Bound<'_, PyAny>>) -> PyResult<PyObject> {
        self.forward_multi(py, inputs)
    }

    #[pyo3(signature = (*inputs))]
    fn forward(&self, py: Python<'_>, inputs: Vec<Bound<'_, PyAny>>) -> PyResult<PyObject> {
        self.forward_multi(py, inputs)
    }

    /// Runs the graph on a list of inputs (main input first).
    fn forward_multi(&self, py: Python<'_>, inputs: Vec<Bound<'_, PyAny>>) -> PyResult<PyObject> {
        let xs = inputs
            .iter()
            .enumerate()
            .map(|(i, x)| tensor_arg(x, &format!("input {i}")))
            .collect::<PyResult<Vec<_>>>()?;
        let g = self.inner.clone();
        let out = py.allow_threads(move || g.forward_multi(&xs)).py()?;
        to_py(py, &out)
    }

    /// [(name, tensor)] with floDl names: `{first tag or node id}/{raw name}`.
    /// torch's keywords: `prefix` joins with "." ; `recurse=False` gives
    /// none (a graph holds parameters only through its nodes, as an
    /// nn.Module container); `remove_duplicate=False` repeats shared tensors.
    #[pyo3(signature = (prefix = "", recurse = true, remove_duplicate = true))]
    fn named_parameters(
        &self,
        py: Python<'_>,
        prefix: &str,
        recurse: bool,
        remove_duplicate: bool,
    ) -> PyResult<PyObject> {
        let ps = if recurse {
            self.inner.named_parameters()
        } else {
            Vec::new()
        };
        super::nn::named_to_py(py, ps, prefix, remove_duplicate)
    }

    fn named_buffers(&self, py: Python<'_>) -> PyResult<PyObject> {
        params_to_py(py, self.inner.named_buffers(), true)
    }

    /// {name: tensor} for parameters then buffers (live tensors, torch-style).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for p in self
            .inner
            .named_parameters()
            .into_iter()
            .chain(self.inner.named_buffers())
        {
            d.set_item(p.name, to_py(py, &p.tensor)?)?;
        }
        Ok(d)
    }

    /// Copies values by name (shapes must match; dtype is cast). With
    /// strict, missing or unexpected names are an error and nothing changes.
    #[pyo3(signature = (state, strict = true))]
    fn load_state_dict(
        &self,
        state: &Bound<'_, PyDict>,
        strict: bool,
    ) -> PyResult<(Vec<String>, Vec<String>)> {
        let mut entries = Vec::with_capacity(state.len());
        for (k, v) in state.iter() {
            let name: String = k.extract()?;
            let t = tensor_arg(&v, &format!("state['{name}']"))?;
            entries.push((name, t));
        }
        let r = self.inner.load_state_dict(&entries, strict).py()?;
        Ok((r.missing, r.skipped))
    }

    /// The output of a tagged node in the last forward, or None before one.
    fn tagged(&self, py: Python<'_>, tag: &str) -> PyResult<Option<PyObject>> {
        self.inner
            .tagged(tag)
            .py()?
            .map(|t| to_py(py, &t))
            .transpose()
    }

    fn tag_names(&self) -> Vec<String> {
        self.inner.tag_names()
    }

    /// Node ids (`linear_1`, `gelu_2`, ...) in execution order.
    fn node_ids(&self) -> Vec<String> {
        self.inner.node_ids()
    }

    #[getter]
    fn training(&self) -> bool {
        self.inner.is_training()
    }

    #[getter]
    fn label(&self) -> Option<String> {
        self.inner.label().map(str::to_string)
    }

    fn step_count(&self) -> u64 {
        self.inner.step_count()
    }

    fn epoch_count(&self) -> u64 {
        self.inner.epoch_count()
    }

    fn detach_state(&self) {
        self.inner.detach_state();
    }

    /// Attaches an optimizer for `step()` (floDl's Trainer.setup does this).
    fn set_optimizer(&self, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = optimizer
            .downcast::<super::optim::PyOptimizer>()
            .map_err(|_| {
                raise(
                    Exc::InputType,
                    "set_optimizer: expected a ferrotorch optimizer".into(),
                )
            })?;
        self.inner.set_optimizer(o.get().inner.clone());
        Ok(())
    }

    /// Averages gradients over the torch.distributed group registered as
    /// `name` at every `step()` (None: one process).
    #[pyo3(signature = (name = None))]
    fn set_process_group(&self, name: Option<&str>) -> PyResult<()> {
        let pg = name
            .map(|n| crate::dist::ProcessGroup::resolve(n).py())
            .transpose()?;
        self.inner.set_process_group(pg);
        Ok(())
    }

    /// lr = schedule(training_step) before each `step()` (None removes it).
    #[pyo3(signature = (schedule = None))]
    fn set_scheduler(&self, schedule: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let s = schedule
            .map(|s| super::sched::schedule_arg(s, "set_scheduler"))
            .transpose()?;
        self.inner.set_scheduler(s);
        Ok(())
    }

    fn set_lr_scale(&self, factor: f64) {
        self.inner.set_lr_scale(factor);
    }

    /// floDl's Graph::step(): scheduled lr, optimizer step, zero_grad, counter.
    fn step(&self, py: Python<'_>) -> PyResult<()> {
        let g = self.inner.clone();
        py.allow_threads(move || g.step()).py()
    }

    fn training_step(&self) -> u64 {
        self.inner.training_step()
    }

    /// Forgets forward-ref state: the next call reads zeros (floDl's reset_state).
    fn reset_state(&self) {
        self.inner.reset_state();
    }

    /// Alias of reset_state (floDl's end_sequence).
    fn end_sequence(&self) {
        self.inner.reset_state();
    }

    fn has_state(&self) -> bool {
        self.inner.has_state()
    }

    /// floDl's end_epoch: flush() (recursive), flush_timings() when
    /// profiling, then epoch_count += 1.
    fn end_epoch(&self) {
        self.inner.end_epoch();
    }

    fn __len__(&self) -> usize {
        self.inner.node_ids().len()
    }

    #[getter]
    fn num_inputs(&self) -> usize {
        self.inner.num_inputs()
    }

    /// floDl's structural hash: 64 hex characters of SHA-256.
    fn structural_hash(&self) -> String {
        self.inner.structural_hash()
    }

    /// The first 8 characters of the structural hash.
    fn short_hash(&self) -> String {
        self.inner.structural_hash()[..8].to_string()
    }

    /// "subgraph" or "tag" for a valid dotted path; TagError otherwise.
    fn validate_path(&self, path: &str) -> PyResult<&'static str> {
        Ok(match Graph::validate_path(&self.me(), path).py()? {
            PathKind::Subgraph => "subgraph",
            PathKind::Tag => "tag",
        })
    }

    fn parameters_at(&self, py: Python<'_>, path: &str) -> PyResult<Vec<PyObject>> {
        Graph::parameters_at(&self.me(), path)
            .py()?
            .iter()
            .map(|t| to_py(py, t))
            .collect()
    }

    fn named_parameters_at(&self, py: Python<'_>, path: &str) -> PyResult<PyObject> {
        params_to_py(py, Graph::named_parameters_at(&self.me(), path).py()?, true)
    }

    /// Stops gradients for every parameter under `path`; returns their count.
    fn freeze(&self, path: &str) -> PyResult<usize> {
        Graph::set_frozen(&self.me(), path, true).py()
    }

    /// Re-enables gradients under `path`.
    fn thaw(&self, path: &str) -> PyResult<usize> {
        Graph::set_frozen(&self.me(), path, false).py()
    }

    fn is_frozen(&self, path: &str) -> PyResult<bool> {
        Graph::is_frozen(&self.me(), path).py()
    }

    /// The labeled child graph at `path`.
    fn subgraph(&self, py: Python<'_>, path: &str) -> PyResult<PyObject> {
        graph_object(py, Graph::subgraph(&self.me(), path).py()?)
    }

    /// Labeled children's labels.
    fn tree_children(&self) -> Vec<String> {
        self.inner
            .tree_children()
            .into_iter()
            .map(|(l, _)| l)
            .collect()
    }

    fn tree_summary(&self) -> String {
        self.inner.tree_summary()
    }

    // --- observation, trends, profiling, Graphviz (graph_observe.rs) ---

    /// Appends the scalar output of each tag from the last forward to its
    /// batch buffer (ShapeError for non-scalars: use collect_with; tags
    /// without an output are ignored).
    fn collect(&self, tags: &Bound<'_, PyAny>) -> PyResult<()> {
        let tags = tags_arg(Some(tags), "collect(tags)")?;
        self.inner.collect(&strs(&tags)).py()
    }

    /// As collect, reducing non-scalar outputs with `reduce`; tag_group
    /// names expand to their members.
    fn collect_with(&self, tags: &Bound<'_, PyAny>, reduce: PyReduce) -> PyResult<()> {
        let tags = tags_arg(Some(tags), "collect_with(tags)")?;
        self.inner.collect_with(&strs(&tags), reduce.into()).py()
    }

    /// Appends external values (a number or a sequence) to a metric's buffer.
    fn record(&self, tag: &str, values: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .record(tag, &values_arg(values, &format!("record('{tag}')"))?);
        Ok(())
    }

    fn record_scalar(&self, tag: &str, value: f64) {
        self.inner.record_scalar(tag, value);
    }

    /// The raw batch buffer of a metric (values since its last flush).
    fn collected(&self, tag: &str) -> Vec<f64> {
        self.inner.collected(tag)
    }

    /// Buffer means -> epoch history (every metric when tags is None or
    /// empty), then every labeled child graph is flushed.
    #[pyo3(signature = (tags = None))]
    fn flush(&self, tags: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let tags = tags_arg(tags, "flush(tags)")?;
        self.inner.flush(&strs(&tags));
        Ok(())
    }

    /// flush without recursing into child graphs.
    #[pyo3(signature = (tags = None))]
    fn flush_local(&self, tags: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let tags = tags_arg(tags, "flush_local(tags)")?;
        self.inner.flush_local(&strs(&tags));
        Ok(())
    }

    /// Flushes that produced data.
    fn flush_count(&self) -> usize {
        self.inner.flush_count()
    }

    /// A metric's epoch history as a Trend (empty when unknown).
    fn trend(&self, tag: &str) -> PyTrend {
        PyTrend {
            inner: self.inner.trend(tag),
        }
    }

    /// Trends of several metrics (tag_group names expand).
    fn trends(&self, tags: &Bound<'_, PyAny>) -> PyResult<PyTrendGroup> {
        let tags = tags_arg(Some(tags), "trends(tags)")?;
        Ok(PyTrendGroup {
            inner: self.inner.trends(&strs(&tags)),
        })
    }

    /// Clears epoch history (all of it when tags is None or empty).
    #[pyo3(signature = (tags = None))]
    fn reset_trend(&self, tags: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let tags = tags_arg(tags, "reset_trend(tags)")?;
        self.inner.reset_trend(&strs(&tags));
        Ok(())
    }

    /// [(name, latest epoch value)]: this graph's metrics in first-record
    /// order, then each labeled child's as "label.tag".
    fn latest_metrics(&self) -> Vec<(String, f64)> {
        self.inner.latest_metrics()
    }

    fn latest_metrics_local(&self) -> Vec<(String, f64)> {
        self.inner.latest_metrics_local()
    }

    /// record_scalar in the child graph named by all but the last segment.
    fn record_at(&self, path: &str, value: f64) -> PyResult<()> {
        self.inner.record_at(path, value).py()
    }

    /// The trend of a metric by dotted path ("encoder.loss").
    fn trend_at(&self, path: &str) -> PyResult<PyTrend> {
        Ok(PyTrend {
            inner: self.inner.trend_at(path).py()?,
        })
    }

    /// collect of tags named by dotted paths; values land in the tag's graph.
    fn collect_at(&self, paths: &Bound<'_, PyAny>) -> PyResult<()> {
        let paths = tags_arg(Some(paths), "collect_at(paths)")?;
        self.inner.collect_at(&strs(&paths)).py()
    }

    /// Seconds left for total_epochs at the mean time per flush so far.
    fn eta(&self, total_epochs: usize) -> f64 {
        self.inner.eta(total_epochs)
    }

    /// Member tags of a tag_group, or None.
    fn tag_group(&self, name: &str) -> Option<Vec<String>> {
        self.inner.tag_group(name).map(|m| m.to_vec())
    }

    /// Graphviz text of the graph (floDl's layout and styles).
    fn dot(&self) -> String {
        self.inner.dot()
    }

    /// SVG bytes rendered by Graphviz's `dot` (written to path if given);
    /// TorchError when `dot` is not installed.
    #[pyo3(signature = (path = None))]
    fn svg<'py>(
        &self,
        py: Python<'py>,
        path: Option<std::path::PathBuf>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let p = path
            .map(|p| {
                p.to_str().map(str::to_string).ok_or_else(|| {
                    raise(Exc::Config, format!("svg: path {p:?} is not valid UTF-8"))
                })
            })
            .transpose()?;
        let g = self.inner.clone();
        let bytes = py.allow_threads(move || g.svg(p.as_deref())).py()?;
        Ok(pyo3::types::PyBytes::new(py, &bytes))
    }

    /// Times every node of the following forwards.
    fn enable_profiling(&self) {
        self.inner.enable_profiling();
    }

    /// Stops timing and drops the last profile.
    fn disable_profiling(&self) {
        self.inner.disable_profiling();
    }

    fn profiling(&self) -> bool {
        self.inner.profiling()
    }

    /// The last profiled forward's times, or None.
    fn profile(&self) -> Option<PyProfile> {
        self.inner.profile().map(|p| PyProfile { inner: p })
    }

    /// Seconds of a tagged node in the last profiled forward (0.0 if none).
    fn timing(&self, tag: &str) -> f64 {
        self.inner.timing(tag)
    }

    /// Appends tagged nodes' last durations to the timing buffer (all tagged
    /// nodes when tags is None or empty).
    #[pyo3(signature = (tags = None))]
    fn collect_timings(&self, tags: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let tags = tags_arg(tags, "collect_timings(tags)")?;
        self.inner.collect_timings(&strs(&tags));
        Ok(())
    }

    #[pyo3(signature = (tags = None))]
    fn flush_timings(&self, tags: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let tags = tags_arg(tags, "flush_timings(tags)")?;
        self.inner.flush_timings(&strs(&tags));
        Ok(())
    }

    /// Per-epoch mean durations (seconds) of a tagged node.
    fn timing_trend(&self, tag: &str) -> PyTrend {
        PyTrend {
            inner: self.inner.timing_trend(tag),
        }
    }

    fn timing_trends(&self, tags: &Bound<'_, PyAny>) -> PyResult<PyTrendGroup> {
        let tags = tags_arg(Some(tags), "timing_trends(tags)")?;
        Ok(PyTrendGroup {
            inner: self.inner.timing_trends(&strs(&tags)),
        })
    }

    #[pyo3(signature = (tags = None))]
    fn reset_timing_trend(&self, tags: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let tags = tags_arg(tags, "reset_timing_trend(tags)")?;
        self.inner.reset_timing_trend(&strs(&tags));
        Ok(())
    }

    /// Saves parameters then buffers with the structural hash as floDl's
    /// `.fdl` (gzip when the path ends in `.gz`); atomic.
    fn save_checkpoint(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        super::checkpoint::graph_save(py, &self.inner, path)
    }

    /// Loads a `.fdl` file by name after validating all of it; with
    /// strict_hash, a file from another architecture is a CheckpointError.
    #[pyo3(signature = (path, strict_hash = true))]
    fn load_checkpoint(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        strict_hash: bool,
    ) -> PyResult<super::checkpoint::PyLoadReport> {
        super::checkpoint::graph_load(py, &self.inner, path, strict_hash)
    }

    /// Loads a file saved from the child graph at `path` into that child,
    /// validated against the child's hash and names.
    fn load_subgraph_checkpoint(
        &self,
        py: Python<'_>,
        path: String,
        file: std::path::PathBuf,
    ) -> PyResult<super::checkpoint::PyLoadReport> {
        super::checkpoint::graph_load_subgraph(py, self.me(), path, file)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMergeOp>()?;
    m.add_class::<PyFlowBuilder>()?;
    m.add_class::<PyLoopBuilder>()?;
    m.add_class::<PyMapBuilder>()?;
    m.add_class::<PyGraph>()?;
    m.add_function(wrap_pyfunction!(_set_graph_type, m)?)?;
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
