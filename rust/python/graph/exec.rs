//! The built `Graph` over `crate::graph::Graph`: running it, its parameters
//! and state dicts, tags, the tree, observation and profiling, floDl's
//! `step()` driving and checkpoints; argument conversion only.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::observe::{tags_arg, values_arg, PyProfile, PyReduce, PyTrend, PyTrendGroup};
use crate::graph::{Graph, PathKind};
use crate::nn::Module;
use crate::python::errors::{raise, Exc, IntoPyResult};
use crate::python::nn::{params_to_py, PyModuleBase};
use crate::python::tensor::{tensor_arg, to_py};

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
pub(super) fn _set_graph_type(py: Python<'_>, cls: Bound<'_, pyo3::types::PyType>) -> PyResult<()> {
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
pub(super) fn graph_object(py: Python<'_>, g: Arc<Graph>) -> PyResult<PyObject> {
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
        let subs = crate::substitute::Substitutes::new(crate::python::substitute::pairs_arg(
            "_forward_with",
            &originals,
            &substitutes,
        )?);
        let xs = inputs
            .iter()
            .enumerate()
            .map(|(i, x)| tensor_arg(x, &format!("input {i}")))
            .collect::<PyResult<Vec<_>>>()?;
        let g = self.inner.clone();
        // Same thread (allow_threads does not move it): the substitutes and
        // torch's thread-local transforms stay in force.
        let out = py.allow_threads(move || g.forward_with(&xs, &subs)).py()?;
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
        crate::python::nn::named_to_py(py, ps, prefix, remove_duplicate)
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
        let o = crate::python::optim::core_of(optimizer).ok_or_else(|| {
            raise(
                Exc::InputType,
                "set_optimizer: expected a ferrotorch optimizer".into(),
            )
        })?;
        self.inner.set_optimizer(o);
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
            .map(|s| crate::python::sched::schedule_arg(s, "set_scheduler"))
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

    // --- observation, trends, profiling, Graphviz (observe.rs) ---

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
    fn eta(&self, total_epochs: &Bound<'_, PyAny>) -> PyResult<f64> {
        let n = crate::python::args::count(total_epochs, "Graph.eta()", "total_epochs")?;
        Ok(self.inner.eta(n as usize))
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
        crate::python::checkpoint::graph_save(py, &self.inner, path)
    }

    /// Loads a `.fdl` file by name after validating all of it; with
    /// strict_hash, a file from another architecture is a CheckpointError.
    #[pyo3(signature = (path, strict_hash = true))]
    fn load_checkpoint(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        strict_hash: bool,
    ) -> PyResult<crate::python::checkpoint::PyLoadReport> {
        crate::python::checkpoint::graph_load(py, &self.inner, path, strict_hash)
    }

    /// Loads a file saved from the child graph at `path` into that child,
    /// validated against the child's hash and names.
    fn load_subgraph_checkpoint(
        &self,
        py: Python<'_>,
        path: String,
        file: std::path::PathBuf,
    ) -> PyResult<crate::python::checkpoint::PyLoadReport> {
        crate::python::checkpoint::graph_load_subgraph(py, self.me(), path, file)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
