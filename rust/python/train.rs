//! The engine's binding (`_core.Engine`): argument conversion only.
//! `ferrotorch.train.Trainer` adds argument handling and callbacks.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::amp::PyGradScaler;
use super::data::PyDataLoader;
use super::errors::{raise, stash, Exc, IntoPyResult};
use super::loss::{holds_loss, loss_core};
use super::optim::core_of;
use super::tensor::{tensor_arg, to_py};
use super::torch_optim::TorchOptimizer;
use crate::amp::AutocastDevice;
use crate::loss::{LossKind, LossSpec};
use crate::optim::Optimizer;
use crate::train::{
    Engine, GraphMode, LoopState, LossFn, LossReads, NonFinite, OptionDefault, RunLimits,
    ScheduleUnit, StepReport, Target, TrainerOptions, UpdateReport, TRAINER_OPTIONS,
};

#[pyclass(name = "Engine", module = "ferrotorch._core", frozen)]
pub struct PyEngine {
    inner: Arc<Engine>,
}

fn loss_arg(loss: &Bound<'_, PyAny>) -> PyResult<LossFn> {
    if let Ok(name) = loss.extract::<String>() {
        return Ok(LossFn::Builtin(LossSpec::from_name(&name).py()?));
    }
    if let Some(l) = loss_core(loss)? {
        return LossFn::builtin(l.get().spec.clone()).py();
    }
    if !loss.is_callable() {
        return Err(raise(
            Exc::InputType,
            format!(
                "Trainer: loss must be a name {:?}, a ferrotorch.losses class instance or a callable, got {}",
                LossKind::NAMES,
                loss.get_type().name()?
            ),
        ));
    }
    let f: PyObject = loss.clone().unbind();
    Ok(LossFn::Custom(Arc::new(move |pred, target| {
        Python::with_gil(|py| {
            let call = || -> PyResult<tch::Tensor> {
                let out = f.call1(py, (to_py(py, pred)?, to_py(py, target)?))?;
                tensor_arg(out.bind(py), "the loss callable's result")
            };
            call().map_err(|e| stash(e, "the loss callable"))
        })
    })))
}

fn inputs_arg(x: &Bound<'_, PyAny>) -> PyResult<Vec<tch::Tensor>> {
    if x.is_instance_of::<PyTuple>() || x.is_instance_of::<PyList>() {
        return x
            .try_iter()?
            .enumerate()
            .map(|(i, t)| tensor_arg(&t?, &format!("x[{i}]")))
            .collect();
    }
    Ok(vec![tensor_arg(x, "x")?])
}

/// A target tensor, or (Kaun) a callable of the prediction returning the loss.
fn target_arg(y: &Bound<'_, PyAny>) -> PyResult<Target> {
    if y.is_callable() && !holds_loss(y) {
        let f: PyObject = y.clone().unbind();
        return Ok(Target::Loss(Arc::new(move |pred| {
            Python::with_gil(|py| {
                let call = || -> PyResult<tch::Tensor> {
                    let out = f.call1(py, (to_py(py, pred)?,))?;
                    tensor_arg(out.bind(py), "the batch's loss function result")
                };
                call().map_err(|e| stash(e, "the batch's loss function"))
            })
        })));
    }
    Ok(Target::Tensor(tensor_arg(y, "y")?))
}

/// A Python callable of one batch (`forward(batch) -> out`) as the core's
/// forward; its result stays a Python object for `loss_fn`.
fn py_forward(f: &PyObject, batch: PyObject) -> crate::Result<PyObject> {
    Python::with_gil(|py| {
        f.call1(py, (batch,))
            .map_err(|e| stash(e, "the model's forward"))
    })
}

/// A Python callable of a forward's result (`loss(out) -> Tensor`) as the core's loss.
fn py_loss(f: &PyObject, out: PyObject) -> crate::Result<tch::Tensor> {
    Python::with_gil(|py| {
        let call = || -> PyResult<tch::Tensor> {
            let l = f.call1(py, (out,))?;
            tensor_arg(l.bind(py), "the batch's loss")
        };
        call().map_err(|e| stash(e, "the batch's loss"))
    })
}

/// A batch's fields as Python sees them: a tuple, or a dict keyed by `names`.
fn fields_py(
    py: Python<'_>,
    fields: &[tch::Tensor],
    names: Option<&[String]>,
) -> PyResult<PyObject> {
    let ts = fields
        .iter()
        .map(|t| to_py(py, t))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(match names {
        Some(ns) => {
            let d = PyDict::new(py);
            for (n, t) in ns.iter().zip(ts) {
                d.set_item(n, t)?;
            }
            d.into_any().unbind()
        }
        None => PyTuple::new(py, ts)?.into_any().unbind(),
    })
}

type PyUpdate = (u64, f64, bool);

fn update_py(u: UpdateReport) -> PyUpdate {
    (u.step, u.loss, u.skipped)
}

fn report_py(r: StepReport) -> (f64, Option<PyUpdate>) {
    (r.loss, r.update.map(update_py))
}

fn state_dict<'py>(py: Python<'py>, s: &LoopState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("step", s.step)?;
    d.set_item("micro", s.micro)?;
    d.set_item("epoch", s.epoch)?;
    d.set_item("batch", s.batch)?;
    d.set_item("skipped", s.skipped)?;
    d.set_item("epoch_loss_sum", s.epoch_loss_sum)?;
    d.set_item("epoch_batches", s.epoch_batches)?;
    d.set_item("window_loss_sum", s.window_loss_sum)?;
    d.set_item("window_bad", s.window_bad)?;
    Ok(d)
}

fn state_from(d: &Bound<'_, PyDict>) -> PyResult<LoopState> {
    let count = |k: &str| -> PyResult<u64> {
        let v = d
            .get_item(k)?
            .ok_or_else(|| raise(Exc::Checkpoint, format!("counters: missing '{k}'")))?;
        v.extract::<u64>().map_err(|_| {
            raise(
                Exc::Checkpoint,
                format!("counters: '{k}' must be an int >= 0, got {v}"),
            )
        })
    };
    let real = |k: &str| -> PyResult<f64> {
        match d.get_item(k)? {
            None => Ok(0.0),
            Some(v) => v.extract::<f64>().map_err(|_| {
                raise(
                    Exc::Checkpoint,
                    format!("counters: '{k}' must be a number, got {v}"),
                )
            }),
        }
    };
    let opt_count = |k: &str| -> PyResult<u64> {
        if d.get_item(k)?.is_none() {
            return Ok(0);
        }
        count(k)
    };
    Ok(LoopState {
        step: count("step")?,
        micro: count("micro")?,
        epoch: count("epoch")?,
        batch: count("batch")?,
        skipped: opt_count("skipped")?,
        epoch_loss_sum: real("epoch_loss_sum")?,
        epoch_batches: opt_count("epoch_batches")?,
        window_loss_sum: real("window_loss_sum")?,
        window_bad: match d.get_item("window_bad")? {
            None => false,
            Some(v) => v.extract::<bool>()?,
        },
    })
}

/// A ferrotorch optimizer (its Rust core), or a torch.optim.Optimizer driven
/// through its Python `step` / `zero_grad` / `param_groups` under the GIL.
fn optimizer_arg(ob: &Bound<'_, PyAny>) -> PyResult<Arc<Mutex<dyn Optimizer>>> {
    if let Some(o) = core_of(ob) {
        return Ok(o);
    }
    let torch_opt = ob.py().import("torch.optim")?.getattr("Optimizer")?;
    if ob.is_instance(&torch_opt)? {
        return Ok(Arc::new(Mutex::new(TorchOptimizer::new(ob)?)));
    }
    Err(raise(
        Exc::InputType,
        format!(
            "Trainer: optimizer must be a ferrotorch or torch.optim optimizer, got {}",
            ob.get_type().name()?
        ),
    ))
}

#[pymethods]
impl PyEngine {
    #[new]
    // Every argument is given: the defaults are the core's table
    // (`TRAINER_OPTIONS`), which `ferrotorch.Trainer`'s signature reads.
    #[pyo3(signature = (model, optimizer, loss, clip_grad_norm, clip_grad_value, schedule,
                        schedule_unit, grad_accumulation, scaler, amp_dtype, amp_device,
                        on_nonfinite, device, process_group, cuda_graph, loss_reads))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        model: &Bound<'_, PyAny>,
        optimizer: &Bound<'_, PyAny>,
        loss: &Bound<'_, PyAny>,
        clip_grad_norm: Option<f64>,
        clip_grad_value: Option<f64>,
        schedule: Option<&Bound<'_, PyAny>>,
        schedule_unit: &str,
        grad_accumulation: &Bound<'_, PyAny>,
        scaler: Option<&Bound<'_, PyAny>>,
        amp_dtype: Option<&Bound<'_, PyAny>>,
        amp_device: &str,
        on_nonfinite: &str,
        device: Option<&str>,
        process_group: Option<&str>,
        cuda_graph: &str,
        loss_reads: &str,
    ) -> PyResult<Self> {
        // ferrotorch modules run in Rust; a torch.nn.Module (or any callable)
        // becomes a node calling back into Python under the GIL.
        let model = super::nn::module_arg(model, "Trainer: model")?;
        let opt = optimizer_arg(optimizer)?;
        let schedule = schedule
            .map(|s| super::sched::schedule_arg(s, "Trainer(scheduler)"))
            .transpose()?;
        let scaler = match scaler {
            None => None,
            Some(s) => {
                let s = s.downcast::<PyGradScaler>().map_err(|_| {
                    raise(
                        Exc::InputType,
                        "Trainer: scaler must be a ferrotorch.GradScaler".into(),
                    )
                })?;
                // The scaler knows optimizers by their Python object address.
                Some((s.get().inner.clone(), optimizer.as_ptr() as usize))
            }
        };
        let autocast = match amp_dtype {
            None => None,
            Some(d) => Some((
                AutocastDevice::from_name(amp_device).py()?,
                super::amp::amp_kind(d, "Trainer(amp)")?,
            )),
        };
        let opts = TrainerOptions {
            clip_grad_norm,
            clip_grad_value,
            schedule,
            schedule_unit: ScheduleUnit::from_name(schedule_unit).py()?,
            grad_accumulation: TrainerOptions::accumulation(super::args::int(
                grad_accumulation,
                "Trainer",
                "grad_accumulation",
            )?)
            .py()?,
            scaler,
            autocast,
            on_nonfinite: NonFinite::from_name(on_nonfinite).py()?,
            device: device.map(|d| super::nn::device_arg(Some(d))).transpose()?,
            process_group: process_group
                .map(|name| crate::dist::ProcessGroup::resolve(name).py())
                .transpose()?,
            cuda_graph: GraphMode::from_name(cuda_graph).py()?,
            loss_reads: LossReads::from_name(loss_reads).py()?,
        };
        let e = Engine::new(model, opt, loss_arg(loss)?, opts).py()?;
        Ok(PyEngine { inner: Arc::new(e) })
    }

    /// One batch (forward, loss, backward; the update when it closes an
    /// accumulation window), without the GIL unless Python code is called.
    /// `y` is a target tensor or a callable `pred -> loss` (Kaun).
    /// Returns (loss, (step, window loss, skipped) or None).
    fn step(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, Option<PyUpdate>)> {
        let (xs, y) = (inputs_arg(x)?, target_arg(y)?);
        let e = self.inner.clone();
        let r = py.allow_threads(move || e.step(&xs, &y)).py()?;
        Ok(report_py(r))
    }

    /// One batch whose loss stays on the device where reads are batched:
    /// (the detached loss, its update's step number or None). `report`
    /// keeps the update for `take_updates` (fit).
    fn step_lazy(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        report: bool,
    ) -> PyResult<(PyObject, Option<u64>)> {
        let (xs, y) = (inputs_arg(x)?, target_arg(y)?);
        let e = self.inner.clone();
        let (loss, r) = py
            .allow_threads(move || e.step_lazy(&xs, &y, report))
            .py()?;
        let loss = loss.f_detach().map_err(crate::Error::from).py()?;
        Ok((to_py(py, &loss)?, r.update.map(|u| u.step)))
    }

    /// Reads every pending loss (one transfer); the updates kept for fit
    /// since the last call.
    fn take_updates(&self, py: Python<'_>) -> PyResult<Vec<PyUpdate>> {
        let e = self.inner.clone();
        let ups = py.allow_threads(move || e.take_updates()).py()?;
        Ok(ups.into_iter().map(update_py).collect())
    }

    /// Whether losses are read in batches (``loss_reads``).
    #[getter]
    fn batched_reads(&self) -> bool {
        self.inner.batched_reads()
    }

    /// One batch whose loss the callable `compute()` returns (it runs the
    /// forward itself); the engine does the rest of the step.
    fn step_closure(
        &self,
        py: Python<'_>,
        compute: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, Option<PyUpdate>)> {
        // The closure needs the GIL; backward must run without it.
        let f: PyObject = compute.clone().unbind();
        let e = self.inner.clone();
        let r = py.allow_threads(move || {
            e.closure_step(|| {
                Python::with_gil(|py| {
                    let out = f.call0(py).map_err(|e| stash(e, "the step function"))?;
                    tensor_arg(out.bind(py), "the step function's result")
                        .map_err(|e| stash(e, "the step function"))
                })
            })
        });
        Ok(report_py(r.py()?))
    }

    /// One batch whose loss was computed by the caller: backward and, at
    /// the end of a window, the update (a torch-style manual loop).
    fn step_loss(
        &self,
        py: Python<'_>,
        loss: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, Option<PyUpdate>)> {
        let loss = tensor_arg(loss, "loss")?;
        let e = self.inner.clone();
        let r = py.allow_threads(move || e.loss_step(loss)).py()?;
        Ok(report_py(r))
    }

    /// One batch of a model run from Python (`Engine::model_step`):
    /// `forward(batch)` under the trainer's autocast, then `loss(out)`;
    /// the engine does the rest of the step. Returns (loss, update or None).
    fn step_batch(
        &self,
        py: Python<'_>,
        batch: &Bound<'_, PyAny>,
        forward: &Bound<'_, PyAny>,
        loss: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, Option<PyUpdate>)> {
        let (b, f, l): (PyObject, PyObject, PyObject) = (
            batch.clone().unbind(),
            forward.clone().unbind(),
            loss.clone().unbind(),
        );
        let e = self.inner.clone();
        let r = py
            .allow_threads(move || e.model_step(|| py_forward(&f, b), |out| py_loss(&l, out)))
            .py()?;
        Ok(report_py(r))
    }

    /// `step_batch` with the loss left on the device where reads are
    /// batched: (the detached loss, its update's step number or None).
    #[pyo3(signature = (batch, forward, loss, report = false))]
    fn step_batch_lazy(
        &self,
        py: Python<'_>,
        batch: &Bound<'_, PyAny>,
        forward: &Bound<'_, PyAny>,
        loss: &Bound<'_, PyAny>,
        report: bool,
    ) -> PyResult<(PyObject, Option<u64>)> {
        let (b, f, l): (PyObject, PyObject, PyObject) = (
            batch.clone().unbind(),
            forward.clone().unbind(),
            loss.clone().unbind(),
        );
        let e = self.inner.clone();
        let (loss, r) = py
            .allow_threads(move || {
                e.model_step_lazy(|| py_forward(&f, b), |out| py_loss(&l, out), report)
            })
            .py()?;
        let loss = loss.f_detach().map_err(crate::Error::from).py()?;
        Ok((to_py(py, &loss)?, r.update.map(|u| u.step)))
    }

    /// `f()` in eval mode without grad (the mode is restored): evaluate and
    /// predict of a model run from Python.
    #[pyo3(signature = (f, was_training = true))]
    fn eval_call(
        &self,
        py: Python<'_>,
        f: &Bound<'_, PyAny>,
        was_training: bool,
    ) -> PyResult<PyObject> {
        let f: PyObject = f.clone().unbind();
        let e = self.inner.clone();
        py.allow_threads(move || {
            e.in_eval(was_training, || {
                Python::with_gil(|py| f.call0(py).map_err(|e| stash(e, "the evaluation")))
            })
        })
        .py()
    }

    /// The trainer's loss of (pred, target), attached to the graph.
    fn compute_loss(
        &self,
        py: Python<'_>,
        pred: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
    ) -> PyResult<PyObject> {
        let (p, t) = (tensor_arg(pred, "pred")?, tensor_arg(target, "target")?);
        let l = self.inner.loss().compute(&p, &t).py()?;
        to_py(py, &l)
    }

    /// Trains on `loader` from the current (epoch, batch) position. Returns
    /// (updates, batches run, epoch done). With `forward` and `loss` (a
    /// model run from Python, as `step_batch`), each batch goes to
    /// `forward` as a tuple of its fields, or as a dict keyed by `names`.
    #[pyo3(signature = (loader, max_batches, until_step = None, every = Vec::new(), forward = None,
                        loss = None, names = None))]
    #[allow(clippy::too_many_arguments)]
    fn run_loader(
        &self,
        py: Python<'_>,
        loader: &Bound<'_, PyDataLoader>,
        max_batches: usize,
        until_step: Option<u64>,
        every: Vec<u64>,
        forward: Option<&Bound<'_, PyAny>>,
        loss: Option<&Bound<'_, PyAny>>,
        names: Option<Vec<String>>,
    ) -> PyResult<(Vec<PyUpdate>, usize, bool)> {
        let (e, l) = (self.inner.clone(), loader.get().inner.clone());
        let limits = RunLimits {
            max_batches,
            until_step,
            every,
        };
        let r = match (forward, loss) {
            (None, None) => py.allow_threads(move || e.run_loader(&l, &limits)).py()?,
            (Some(f), Some(lf)) => {
                let (f, lf): (PyObject, PyObject) = (f.clone().unbind(), lf.clone().unbind());
                let batch = move |fields: Vec<tch::Tensor>| -> crate::Result<PyObject> {
                    Python::with_gil(|py| {
                        let b = fields_py(py, &fields, names.as_deref())
                            .map_err(|e| stash(e, "the loader's batch"))?;
                        f.call1(py, (b,))
                            .map_err(|e| stash(e, "the model's forward"))
                    })
                };
                py.allow_threads(move || {
                    e.run_loader_with(&l, &limits, batch, |out| py_loss(&lf, out))
                })
                .py()?
            }
            _ => {
                return Err(raise(
                    Exc::Config,
                    "Engine.run_loader: forward and loss go together".into(),
                ))
            }
        };
        Ok((
            r.updates.into_iter().map(update_py).collect(),
            r.batches,
            r.epoch_done,
        ))
    }

    /// The current epoch's mean batch loss so far (over every rank's
    /// batches under a process group; NaN before any batch).
    fn epoch_loss(&self, py: Python<'_>) -> PyResult<f64> {
        let e = self.inner.clone();
        py.allow_threads(move || e.epoch_loss()).py()
    }

    /// Ends the epoch: (flushed update or None, (epoch number, mean loss,
    /// batches)).
    fn end_epoch(&self, py: Python<'_>) -> PyResult<(Option<PyUpdate>, (u64, f64, u64))> {
        let e = self.inner.clone();
        let (u, s) = py.allow_threads(move || e.end_epoch()).py()?;
        Ok((u.map(update_py), (s.epoch, s.loss, s.batches)))
    }

    /// The counters and sums, as a dict (what a resume restores).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, &self.inner.state().py()?)
    }

    /// (step, micro, epoch, batch) without reading pending losses: no host
    /// sync, so a loop can ask every batch (`state` reads them all first).
    fn position(&self) -> PyResult<(u64, u64, u64, u64)> {
        let s = self.inner.position().py()?;
        Ok((s.step, s.micro, s.epoch, s.batch))
    }

    /// Losses not read yet (batched reads).
    #[getter]
    fn pending_reads(&self) -> PyResult<usize> {
        self.inner.pending_reads().py()
    }

    /// Checks a counters dict without applying it.
    #[staticmethod]
    fn check_state(state: &Bound<'_, PyDict>) -> PyResult<()> {
        state_from(state).map(|_| ())
    }

    fn set_state(&self, state: &Bound<'_, PyDict>) -> PyResult<()> {
        self.inner.set_state(state_from(state)?).py()
    }

    /// The model's output in eval mode without grad; the mode is restored.
    #[pyo3(signature = (x, was_training = true))]
    fn predict(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        was_training: bool,
    ) -> PyResult<PyObject> {
        let xs = inputs_arg(x)?;
        let e = self.inner.clone();
        let out = py
            .allow_threads(move || e.predict(&xs, was_training))
            .py()?;
        to_py(py, &out)
    }

    /// (loss, prediction) on one batch in eval mode without grad.
    #[pyo3(signature = (x, y, was_training = true))]
    fn eval_batch(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        was_training: bool,
    ) -> PyResult<(f64, PyObject)> {
        let (xs, y) = (inputs_arg(x)?, target_arg(y)?);
        let e = self.inner.clone();
        let (loss, pred) = py
            .allow_threads(move || {
                let (l, p) = e.eval_batch(&xs, &y, was_training)?;
                Ok::<_, crate::Error>((l.f_double_value(&[])?, p))
            })
            .py()?;
        Ok((loss, to_py(py, &pred)?))
    }

    /// `t` moved to the trainer's device (non-blocking), or `t` itself.
    fn to_device(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let t = tensor_arg(t, "tensor")?;
        to_py(py, &self.inner.to_device(&t).py()?)
    }

    /// CUDA graph mode as a dict: mode, active, node and reason (why steps
    /// run eagerly), warn, key (the capture key), graphs, captures,
    /// replays, invalidations.
    fn cuda_graph_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.cuda_graph_status().py()?;
        let d = PyDict::new(py);
        d.set_item("mode", s.mode)?;
        d.set_item("active", s.active)?;
        d.set_item("node", s.blocker.as_ref().map(|b| b.node.clone()))?;
        d.set_item("reason", s.blocker.as_ref().map(|b| b.reason.clone()))?;
        d.set_item("warn", s.blocker.as_ref().is_some_and(|b| b.warn))?;
        d.set_item("key", s.key)?;
        d.set_item("graphs", s.graphs)?;
        d.set_item("captures", s.captures)?;
        d.set_item("replays", s.replays)?;
        d.set_item("invalidations", s.invalidations)?;
        Ok(d)
    }

    /// Drops every captured graph; later steps warm up and capture again.
    fn invalidate_cuda_graphs(&self) -> PyResult<()> {
        self.inner.invalidate_cuda_graphs().py()
    }

    /// True when the loss is built in, so steps run without the GIL.
    #[getter]
    fn builtin_loss(&self) -> bool {
        self.inner.loss().is_builtin()
    }
}

/// The core's table of Trainer options: (name, default, doc) in signature order.
#[pyfunction]
fn trainer_options(py: Python<'_>) -> PyResult<Vec<(&'static str, PyObject, &'static str)>> {
    TRAINER_OPTIONS
        .iter()
        .map(|&(name, d, doc)| {
            let v = match d {
                OptionDefault::None => py.None(),
                OptionDefault::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
                OptionDefault::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
                OptionDefault::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
            };
            Ok((name, v, doc))
        })
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(trainer_options, m)?)?;
    m.add_class::<PyEngine>()?;
    Ok(())
}
