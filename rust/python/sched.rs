//! Schedules and schedulers over `crate::sched`: argument conversion, the
//! optimizer's lrs read and written (torch `param_groups` or a ferrotorch
//! optimizer's `lr` / `set_lr`), state dicts to and from Python.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::errors::{raise, stash, Exc, IntoPyResult};
use super::optim::PyOptimizer;
use crate::optim::Optimizer;
use crate::sched::flodl;
use crate::sched::kaun;
use crate::sched::plateau::ReduceLROnPlateau;
use crate::sched::sequential::{SequentialLR, SharedScheduler};
use crate::sched::state::{State, Val};
use crate::sched::torch::{LrScheduler, LrSchedulerCore, PerGroup, StepOutput};
use crate::sched::{ArcSchedule, Schedule};

// ---------------------------------------------------------------------------
// Python callables as schedules

/// A Python callable `int -> float` used as a schedule (takes the GIL).
struct CallableSchedule(Py<PyAny>);

impl Schedule for CallableSchedule {
    fn lr(&self, step: usize) -> f64 {
        self.try_lr(step).unwrap_or(f64::NAN)
    }

    fn try_lr(&self, step: usize) -> crate::Result<f64> {
        Python::with_gil(|py| {
            let f = self.0.bind(py);
            let v = f
                .call1((step,))
                .map_err(|e| stash(e, "schedule callable"))?;
            v.extract::<f64>().map_err(|_| {
                let got = v.repr().map(|r| r.to_string()).unwrap_or_default();
                let ty = v.get_type().name().map(|n| n.to_string()).unwrap_or_default();
                let msg = format!(
                    "schedule callable {}: at step {step} it returned {got} ({ty}); a schedule must return a float",
                    f.repr().map(|r| r.to_string()).unwrap_or_default()
                );
                stash(raise(Exc::InputType, msg.clone()), &msg)
            })
        })
    }
}

/// A ferrotorch schedule, or any Python callable `int -> float`.
pub(super) fn schedule_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<ArcSchedule> {
    if let Ok(s) = ob.downcast::<PySchedule>() {
        return Ok(s.get().inner.clone());
    }
    if ob.is_callable() {
        return Ok(Arc::new(CallableSchedule(ob.clone().unbind())));
    }
    Err(raise(
        Exc::InputType,
        format!(
            "{what}: expected a schedule or a callable int -> float, got {}",
            ob.get_type().name()?
        ),
    ))
}

fn step_arg(who: &str, step: i64) -> PyResult<usize> {
    usize::try_from(step)
        .map_err(|_| raise(Exc::Config, format!("{who}: step must be >= 0, got {step}")))
}

// ---------------------------------------------------------------------------
// Schedules: floDl calculators and Kaun functions

/// A learning rate as a function of the step: `s(step)` or `s.lr(step)`.
#[pyclass(name = "Schedule", module = "ferrotorch._core", subclass, frozen)]
pub struct PySchedule {
    inner: ArcSchedule,
    desc: String,
}

#[pymethods]
impl PySchedule {
    /// The value at `step` (an int >= 0).
    fn lr(&self, step: i64) -> PyResult<f64> {
        self.inner
            .try_lr(step_arg(&self.desc, step)?)
            .map_err(super::errors::to_py)
    }

    fn __call__(&self, step: i64) -> PyResult<f64> {
        self.lr(step)
    }

    fn __repr__(&self) -> String {
        self.desc.clone()
    }
}

fn schedule<S: Schedule + 'static>(s: S, desc: String) -> PyClassInitializer<PySchedule> {
    PyClassInitializer::from(PySchedule {
        inner: Arc::new(s),
        desc,
    })
}

/// floDl StepDecay(base, step_size, gamma): base * gamma^(step // step_size).
#[pyclass(name = "StepDecay", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyStepDecay;

#[pymethods]
impl PyStepDecay {
    #[new]
    fn new(base: f64, step_size: usize, gamma: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::StepDecay::new(base, step_size, gamma).py()?;
        let d = format!("StepDecay({base}, {step_size}, {gamma})");
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl CosineScheduler(base, min_lr, total).
#[pyclass(name = "CosineScheduler", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyCosineScheduler;

#[pymethods]
impl PyCosineScheduler {
    #[new]
    fn new(base: f64, min_lr: f64, total: usize) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::CosineScheduler::new(base, min_lr, total).py()?;
        let d = format!("CosineScheduler({base}, {min_lr}, {total})");
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl WarmupScheduler(inner, target_lr, warmup_steps).
#[pyclass(name = "WarmupScheduler", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyWarmupScheduler;

#[pymethods]
impl PyWarmupScheduler {
    #[new]
    fn new(
        inner: &Bound<'_, PyAny>,
        target_lr: f64,
        warmup_steps: usize,
    ) -> PyResult<PyClassInitializer<Self>> {
        let i = schedule_arg(inner, "WarmupScheduler inner")?;
        let s = flodl::WarmupScheduler::new(i, target_lr, warmup_steps).py()?;
        let d = format!(
            "WarmupScheduler({}, {target_lr}, {warmup_steps})",
            inner.repr()?
        );
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl ExponentialLR(base, gamma): base * gamma^step.
#[pyclass(name = "ExponentialSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyExponentialSchedule;

#[pymethods]
impl PyExponentialSchedule {
    #[new]
    fn new(base: f64, gamma: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::ExponentialLR::new(base, gamma).py()?;
        Ok(schedule(s, format!("ExponentialLR({base}, {gamma})")).add_subclass(Self))
    }
}

/// floDl MultiStepLR(base, milestones, gamma); milestones are sorted.
#[pyclass(name = "MultiStepSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyMultiStepSchedule {
    milestones: Vec<usize>,
}

#[pymethods]
impl PyMultiStepSchedule {
    #[new]
    fn new(base: f64, milestones: Vec<usize>, gamma: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::MultiStepLR::new(base, &milestones, gamma).py()?;
        let m = s.milestones.clone();
        let d = format!("MultiStepLR({base}, {m:?}, {gamma})");
        Ok(schedule(s, d).add_subclass(Self { milestones: m }))
    }

    /// The milestones, sorted.
    #[getter]
    fn milestones(&self) -> Vec<usize> {
        self.milestones.clone()
    }
}

/// floDl OneCycleLR(max_lr, total) / with_warmup_frac(max_lr, total, frac).
#[pyclass(name = "OneCycleSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyOneCycleSchedule {
    warmup_steps: usize,
}

#[pymethods]
impl PyOneCycleSchedule {
    #[new]
    #[pyo3(signature = (max_lr, total, warmup_frac = 0.3))]
    fn new(max_lr: f64, total: usize, warmup_frac: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::OneCycleLR::with_warmup_frac(max_lr, total, warmup_frac).py()?;
        let w = s.warmup_steps;
        let d = format!("OneCycleLR({max_lr}, {total}, warmup_frac={warmup_frac})");
        Ok(schedule(s, d).add_subclass(Self { warmup_steps: w }))
    }

    /// round(total * warmup_frac).
    #[getter]
    fn warmup_steps(&self) -> usize {
        self.warmup_steps
    }
}

/// floDl CyclicLR(base, max_lr, step) / asymmetric(base, max_lr, up, down).
#[pyclass(name = "CyclicSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyCyclicSchedule;

#[pymethods]
impl PyCyclicSchedule {
    #[new]
    #[pyo3(signature = (base, max_lr, step_size_up, step_size_down = None))]
    fn new(
        base: f64,
        max_lr: f64,
        step_size_up: usize,
        step_size_down: Option<usize>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let down = step_size_down.unwrap_or(step_size_up);
        let s = flodl::CyclicLR::asymmetric(base, max_lr, step_size_up, down).py()?;
        let d = format!("CyclicLR({base}, {max_lr}, {step_size_up}, {down})");
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl PlateauScheduler(base, patience, factor, min_lr=0): observe(metric) -> lr.
#[pyclass(name = "PlateauScheduler", module = "ferrotorch._core", frozen)]
struct PyPlateauScheduler(Mutex<flodl::PlateauScheduler>);

impl PyPlateauScheduler {
    fn lock(&self) -> PyResult<MutexGuard<'_, flodl::PlateauScheduler>> {
        self.0
            .lock()
            .map_err(|_| raise(Exc::Torch, "PlateauScheduler is poisoned".into()))
    }
}

#[pymethods]
impl PyPlateauScheduler {
    #[new]
    #[pyo3(signature = (base, patience, factor, min_lr = 0.0))]
    fn new(base: f64, patience: usize, factor: f64, min_lr: f64) -> PyResult<Self> {
        Ok(Self(Mutex::new(
            flodl::PlateauScheduler::new(base, patience, factor, min_lr).py()?,
        )))
    }

    /// Records a metric (lower is better) and returns the lr.
    fn observe(&self, metric: f64) -> PyResult<f64> {
        Ok(self.lock()?.observe(metric))
    }

    /// The current lr.
    fn lr(&self) -> PyResult<f64> {
        Ok(self.lock()?.lr())
    }

    #[getter]
    fn best(&self) -> PyResult<f64> {
        Ok(self.lock()?.best())
    }

    #[getter]
    fn wait(&self) -> PyResult<usize> {
        Ok(self.lock()?.wait())
    }
}

fn kaun(s: impl Schedule + 'static, desc: String) -> PySchedule {
    PySchedule {
        inner: Arc::new(s),
        desc,
    }
}

#[pyfunction]
fn kaun_constant(value: f64) -> PySchedule {
    kaun(kaun::Constant(value), format!("constant({value})"))
}

#[pyfunction]
#[pyo3(signature = (init_value, decay_steps, alpha = 0.0))]
fn kaun_cosine_decay(init_value: f64, decay_steps: i64, alpha: f64) -> PyResult<PySchedule> {
    let s = kaun::CosineDecay::new(init_value, decay_steps, alpha).py()?;
    Ok(kaun(
        s,
        format!("cosine_decay({init_value}, {decay_steps}, alpha={alpha})"),
    ))
}

#[pyfunction]
fn kaun_warmup_linear(init_value: f64, peak_value: f64, warmup_steps: i64) -> PyResult<PySchedule> {
    let s = kaun::WarmupLinear::new(init_value, peak_value, warmup_steps).py()?;
    Ok(kaun(
        s,
        format!("warmup_linear({init_value}, {peak_value}, {warmup_steps})"),
    ))
}

#[pyfunction]
#[pyo3(signature = (init_value, peak_value, warmup_steps, decay_steps = None, end_value = 0.0))]
fn kaun_warmup_cosine(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    decay_steps: Option<i64>,
    end_value: f64,
) -> PyResult<PySchedule> {
    Ok(match decay_steps {
        None => kaun(
            kaun::WarmupCosine::new(init_value, peak_value, warmup_steps).py()?,
            format!("warmup_cosine({init_value}, {peak_value}, {warmup_steps})"),
        ),
        Some(d) => kaun(
            kaun::WarmupCosineDecay::new(init_value, peak_value, warmup_steps, d, end_value)
                .py()?,
            format!(
                "warmup_cosine({init_value}, {peak_value}, {warmup_steps}, {d}, end_value={end_value})"
            ),
        ),
    })
}

#[pyfunction]
fn kaun_exponential_decay(
    init_value: f64,
    decay_rate: f64,
    decay_steps: i64,
) -> PyResult<PySchedule> {
    let s = kaun::ExponentialDecay::new(init_value, decay_rate, decay_steps).py()?;
    Ok(kaun(
        s,
        format!("exponential_decay({init_value}, {decay_rate}, {decay_steps})"),
    ))
}

#[pyfunction]
fn kaun_join(schedules: &Bound<'_, PyAny>, boundaries: Vec<i64>) -> PyResult<PySchedule> {
    let mut parts = Vec::new();
    for (i, s) in schedules.try_iter()?.enumerate() {
        parts.push(schedule_arg(&s?, &format!("join schedules[{i}]"))?);
    }
    let s = kaun::Join::new(parts, boundaries.clone()).py()?;
    Ok(kaun(s, format!("join(boundaries={boundaries:?})")))
}

// ---------------------------------------------------------------------------
// The optimizer seen by a torch-style scheduler

/// initial_lr of ferrotorch optimizers, which have no group dicts to keep it
/// in (torch keeps `group["initial_lr"]`, shared by every scheduler of the
/// optimizer). Keyed by the optimizer's core: a `Weak` pins the address
/// without keeping the optimizer (or its tensors) alive.
type InitialLrs = Vec<(Weak<Mutex<dyn Optimizer>>, Vec<f64>)>;
static INITIAL_LRS: Mutex<InitialLrs> = Mutex::new(Vec::new());

fn with_initial<R>(f: impl FnOnce(&mut InitialLrs) -> R) -> PyResult<R> {
    let mut reg = INITIAL_LRS
        .lock()
        .map_err(|_| raise(Exc::Torch, "scheduler registry poisoned".into()))?;
    reg.retain(|(w, _)| w.strong_count() > 0);
    Ok(f(&mut reg))
}

struct Opt {
    obj: Py<PyAny>,
    groups: bool,
    ferro: Option<Weak<Mutex<dyn Optimizer>>>,
}

impl Opt {
    fn bind(ob: &Bound<'_, PyAny>, who: &str) -> PyResult<Self> {
        let groups = ob.hasattr("param_groups")?;
        let ferro = ob
            .downcast::<PyOptimizer>()
            .ok()
            .map(|o| Arc::downgrade(&o.get().inner));
        let lr_api = ob.hasattr("lr")? && ob.hasattr("set_lr")?;
        if !(groups || lr_api) {
            return Err(raise(
                Exc::InputType,
                format!(
                    "{who}: expected an optimizer (torch-style param_groups, or a ferrotorch \
                     optimizer with lr / set_lr), got {}",
                    ob.get_type().name()?
                ),
            ));
        }
        Ok(Self {
            obj: ob.clone().unbind(),
            groups,
            ferro,
        })
    }

    fn param_groups<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.obj
            .bind(py)
            .getattr("param_groups")?
            .try_iter()?
            .collect()
    }

    fn n_groups(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(if self.groups {
            self.param_groups(py)?.len()
        } else {
            1
        })
    }

    fn read(&self, py: Python<'_>) -> PyResult<Vec<f64>> {
        if self.groups {
            self.param_groups(py)?
                .iter()
                .map(|g| g.get_item("lr")?.extract::<f64>())
                .collect()
        } else {
            Ok(vec![self.obj.bind(py).getattr("lr")?.extract::<f64>()?])
        }
    }

    /// `group[key] = v`, filling in place when the value is a tensor (as
    /// torch's `_update_param_group_val`).
    fn set_item(py: Python<'_>, g: &Bound<'_, PyAny>, key: &str, v: f64) -> PyResult<()> {
        let tensor = py.import("torch")?.getattr("Tensor")?;
        if let Ok(old) = g.get_item(key) {
            if old.is_instance(&tensor)? {
                old.call_method1("fill_", (v,))?;
                return Ok(());
            }
        }
        g.set_item(key, v)
    }

    fn write(&self, py: Python<'_>, lrs: &[f64]) -> PyResult<()> {
        let ob = self.obj.bind(py);
        if self.groups {
            let direct = self.ferro.is_some() && ob.hasattr("set_group_lr")?;
            for (i, (g, &lr)) in self.param_groups(py)?.iter().zip(lrs).enumerate() {
                if direct {
                    ob.call_method1("set_group_lr", (i, lr))?;
                } else {
                    Self::set_item(py, g, "lr", lr)?;
                }
            }
        } else if let Some(&lr) = lrs.first() {
            ob.call_method1("set_lr", (lr,))?;
        }
        Ok(())
    }

    /// `Some(use_beta1)` when the optimizer has a momentum or beta1 to cycle.
    fn momentum_mode(&self, py: Python<'_>) -> PyResult<Option<bool>> {
        let ob = self.obj.bind(py);
        // torch reads `defaults`; a ferrotorch optimizer's first group holds
        // the same keys (its hyperparameters), writable through param_groups.
        let d = if ob.hasattr("defaults")? {
            ob.getattr("defaults")?
        } else if self.groups {
            match self.param_groups(py)?.into_iter().next() {
                Some(g) => g,
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        if d.contains("betas")? {
            Ok(Some(true))
        } else if d.contains("momentum")? {
            Ok(Some(false))
        } else {
            Ok(None)
        }
    }

    fn write_momentum(&self, py: Python<'_>, ms: &[f64], use_beta1: bool) -> PyResult<()> {
        for (g, &m) in self.param_groups(py)?.iter().zip(ms) {
            if use_beta1 {
                let betas = g.get_item("betas")?;
                let mut items: Vec<Bound<'_, PyAny>> =
                    betas.try_iter()?.collect::<PyResult<_>>()?;
                if items.is_empty() {
                    return Err(raise(Exc::Config, "param group 'betas' is empty".into()));
                }
                items[0] = m.into_pyobject(py)?.into_any();
                g.set_item("betas", PyTuple::new(py, items)?)?;
            } else {
                g.set_item("momentum", m)?;
            }
        }
        Ok(())
    }

    fn apply(&self, py: Python<'_>, out: &StepOutput, use_beta1: Option<bool>) -> PyResult<()> {
        self.write(py, &out.lrs)?;
        if let (Some(ms), Some(b)) = (&out.momentum, use_beta1) {
            self.write_momentum(py, ms, b)?;
        }
        Ok(())
    }

    /// A per-group entry other than lr (OneCycleLR's max_lr, ...). Only
    /// torch-style groups keep them; ferrotorch keeps initial_lr aside.
    fn set_group_key(&self, py: Python<'_>, key: &str, vals: &[f64]) -> PyResult<()> {
        if key == "initial_lr" {
            if let Some(w) = &self.ferro {
                let vals = vals.to_vec();
                return with_initial(|reg| {
                    reg.retain(|(x, _)| !Weak::ptr_eq(x, w));
                    reg.push((w.clone(), vals));
                });
            }
        }
        if self.groups && self.ferro.is_none() {
            for (g, &v) in self.param_groups(py)?.iter().zip(vals) {
                g.set_item(key, v)?;
            }
        }
        Ok(())
    }

    fn ferro_initial(&self) -> PyResult<Option<Vec<f64>>> {
        match &self.ferro {
            None => Ok(None),
            Some(w) => with_initial(|reg| {
                reg.iter()
                    .find(|(x, _)| Weak::ptr_eq(x, w))
                    .map(|(_, v)| v.clone())
            }),
        }
    }

    /// torch's `group.setdefault("initial_lr", group["lr"])`; returns them.
    fn setdefault_initial(&self, py: Python<'_>) -> PyResult<Vec<f64>> {
        if self.ferro.is_some() {
            if let Some(v) = self.ferro_initial()? {
                return Ok(v);
            }
            let cur = self.read(py)?;
            self.set_group_key(py, "initial_lr", &cur)?;
            return Ok(cur);
        }
        if !self.groups {
            return self.read(py);
        }
        let mut out = Vec::new();
        for g in self.param_groups(py)? {
            if !g.contains("initial_lr")? {
                let lr = g.get_item("lr")?;
                let lr = match lr.call_method0("clone") {
                    Ok(c) if lr.hasattr("fill_")? => c,
                    _ => lr,
                };
                g.set_item("initial_lr", lr)?;
            }
            out.push(g.get_item("initial_lr")?.extract::<f64>()?);
        }
        Ok(out)
    }

    /// The groups' `initial_lr` (SequentialLR resets lrs to them).
    fn initial(&self, py: Python<'_>, who: &str) -> PyResult<Vec<f64>> {
        if let Some(v) = self.ferro_initial()? {
            return Ok(v);
        }
        if !self.groups || self.ferro.is_some() {
            return self.read(py);
        }
        self.param_groups(py)?
            .iter()
            .enumerate()
            .map(|(i, g)| {
                g.get_item("initial_lr")
                    .map_err(|_| {
                        raise(
                            Exc::Tag,
                            format!("{who}: param_groups[{i}] has no 'initial_lr'"),
                        )
                    })?
                    .extract::<f64>()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// State dicts

fn val_to_py(py: Python<'_>, v: &Val) -> PyResult<PyObject> {
    Ok(match v {
        Val::None => py.None(),
        Val::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Val::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Val::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Val::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        Val::Floats(v) => PyList::new(py, v)?.into_any().unbind(),
        Val::Ints(v) => PyList::new(py, v)?.into_any().unbind(),
        Val::Counter(c) => {
            let d = PyDict::new(py);
            for (k, n) in c {
                d.set_item(k, n)?;
            }
            py.import("collections")?
                .getattr("Counter")?
                .call1((d,))?
                .unbind()
        }
        Val::States(s) => {
            let l = PyList::empty(py);
            for st in s {
                l.append(state_to_py(py, st)?)?;
            }
            l.into_any().unbind()
        }
    })
}

fn state_to_py(py: Python<'_>, s: &State) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in s {
        d.set_item(k, val_to_py(py, v)?)?;
    }
    Ok(d.unbind())
}

/// Python value -> `Val`; `None` for what a scheduler never stores
/// (callables, torch's phase dicts), which the loaders then ignore.
fn py_to_val(ob: &Bound<'_, PyAny>) -> PyResult<Option<Val>> {
    if ob.is_none() {
        return Ok(Some(Val::None));
    }
    if ob.is_instance_of::<PyBool>() {
        return Ok(Some(Val::Bool(ob.extract()?)));
    }
    if ob.is_instance_of::<PyInt>() {
        return Ok(ob.extract::<i64>().ok().map(Val::Int));
    }
    if ob.is_instance_of::<PyFloat>() {
        return Ok(Some(Val::Float(ob.extract()?)));
    }
    if ob.is_instance_of::<PyString>() {
        return Ok(Some(Val::Str(ob.extract()?)));
    }
    if let Ok(d) = ob.downcast::<PyDict>() {
        let mut pairs = Vec::new();
        for (k, v) in d.iter() {
            match (k.extract::<i64>(), v.extract::<i64>()) {
                (Ok(k), Ok(v)) => pairs.push((k, v)),
                _ => return Ok(None),
            }
        }
        pairs.sort_unstable();
        return Ok(Some(Val::Counter(pairs)));
    }
    if ob.is_instance_of::<PyList>() || ob.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = ob.try_iter()?.collect::<PyResult<_>>()?;
        if !items.is_empty() && items.iter().all(|i| i.is_instance_of::<PyDict>()) {
            let mut states = Vec::new();
            for i in &items {
                match dict_to_state(i) {
                    Ok(s) => states.push(s),
                    Err(_) => return Ok(None),
                }
            }
            return Ok(Some(Val::States(states)));
        }
        if items
            .iter()
            .all(|i| i.is_instance_of::<PyInt>() && !i.is_instance_of::<PyBool>())
        {
            return Ok(items
                .iter()
                .map(|i| i.extract::<i64>())
                .collect::<PyResult<Vec<_>>>()
                .ok()
                .map(Val::Ints));
        }
        return Ok(items
            .iter()
            .map(|i| i.extract::<f64>())
            .collect::<PyResult<Vec<_>>>()
            .ok()
            .map(Val::Floats));
    }
    // 0-dim tensors and other numbers.
    Ok(ob.extract::<f64>().ok().map(Val::Float))
}

fn dict_to_state(ob: &Bound<'_, PyAny>) -> PyResult<State> {
    let d = ob.downcast::<PyDict>().map_err(|_| {
        raise(
            Exc::InputType,
            "load_state_dict: expected a dict".to_string(),
        )
    })?;
    let mut s = State::new();
    for (k, v) in d.iter() {
        let k: String = k.extract()?;
        if let Some(v) = py_to_val(&v)? {
            s.push((k, v));
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------
// torch-style schedulers

enum Core {
    One(Arc<Mutex<LrScheduler>>),
    Seq {
        core: Mutex<SequentialLR>,
        beta1: Vec<Option<bool>>,
    },
}

/// Base class of the torch-style schedulers bound to an optimizer.
#[pyclass(name = "LRScheduler", module = "ferrotorch._core", subclass, frozen)]
pub struct PyLRScheduler {
    core: Core,
    opt: Opt,
    /// `Some(use_beta1)` when momentum is cycled.
    beta1: Option<bool>,
    /// LambdaLR's callables (for state_dict's `lr_lambdas`).
    lambdas: Vec<Py<PyAny>>,
}

fn poisoned() -> PyErr {
    raise(Exc::Torch, "scheduler is poisoned".into())
}

fn check_last_epoch(who: &str, last_epoch: i64) -> PyResult<()> {
    if last_epoch != -1 {
        return Err(raise(
            Exc::Config,
            format!(
                "{who}: last_epoch={last_epoch} is not supported (only -1); \
                 resume with load_state_dict instead"
            ),
        ));
    }
    Ok(())
}

impl PyLRScheduler {
    fn one(&self) -> Option<&Arc<Mutex<LrScheduler>>> {
        match &self.core {
            Core::One(c) => Some(c),
            Core::Seq { .. } => None,
        }
    }

    /// The common part of torch's constructors: group entries, momentum,
    /// initial_lr, then the initial step.
    fn build(
        py: Python<'_>,
        opt: Opt,
        mut core: LrScheduler,
        beta1: Option<bool>,
        lambdas: Vec<Py<PyAny>>,
    ) -> PyResult<Self> {
        for (key, vals) in core.group_overrides() {
            if key == "lr" {
                opt.write(py, &vals)?;
            } else {
                opt.set_group_key(py, key, &vals)?;
            }
        }
        if let (Some(m), Some(b)) = (core.initial_momentum(), beta1) {
            opt.write_momentum(py, &m, b)?;
        }
        let initial = opt.setdefault_initial(py)?;
        core.set_initial_lrs(&initial).py()?;
        let out = core.initial_step(&opt.read(py)?).py()?;
        opt.apply(py, &out, beta1)?;
        Ok(Self {
            core: Core::One(Arc::new(Mutex::new(core))),
            opt,
            beta1,
            lambdas,
        })
    }

    fn cycle_momentum(who: &str, py: Python<'_>, opt: &Opt, on: bool) -> PyResult<Option<bool>> {
        if !on {
            return Ok(None);
        }
        match opt.momentum_mode(py)? {
            Some(b) => Ok(Some(b)),
            None => Err(raise(
                Exc::Config,
                format!(
                    "{who}: cycle_momentum=True needs an optimizer with 'momentum' or 'betas' \
                     in its defaults (torch.optim); pass cycle_momentum=False"
                ),
            )),
        }
    }
}

fn per_group(ob: &Bound<'_, PyAny>, who: &str, name: &str, n: usize) -> PyResult<Vec<f64>> {
    let p = if let Ok(v) = ob.extract::<f64>() {
        PerGroup::One(v)
    } else if let Ok(v) = ob.extract::<Vec<f64>>() {
        PerGroup::Each(v)
    } else {
        return Err(raise(
            Exc::InputType,
            format!("{who}: {name} must be a number or a list of numbers"),
        ));
    };
    p.expand(who, name, n).py()
}

#[pymethods]
impl PyLRScheduler {
    /// Advances one step and sets the optimizer's lrs. `epoch` (deprecated
    /// in torch) jumps to that epoch using the closed form where torch has one.
    #[pyo3(signature = (epoch = None))]
    fn step(&self, py: Python<'_>, epoch: Option<f64>) -> PyResult<()> {
        let cur = self.opt.read(py)?;
        match &self.core {
            Core::One(c) => {
                let out = c.lock().map_err(|_| poisoned())?.step(&cur, epoch).py()?;
                self.opt.apply(py, &out, self.beta1)
            }
            Core::Seq { core, beta1 } => {
                if epoch.is_some() {
                    return Err(raise(
                        Exc::Config,
                        "SequentialLR.step takes no epoch".into(),
                    ));
                }
                let (idx, out) = core.lock().map_err(|_| poisoned())?.step(&cur).py()?;
                self.opt.apply(py, &out, beta1.get(idx).copied().flatten())
            }
        }
    }

    /// The lrs set by the last step, one per param group.
    fn get_last_lr(&self) -> PyResult<Vec<f64>> {
        Ok(match &self.core {
            Core::One(c) => c.lock().map_err(|_| poisoned())?.last_lr.clone(),
            Core::Seq { core, .. } => core.lock().map_err(|_| poisoned())?.last_lr.clone(),
        })
    }

    /// The index of the last step (0 right after construction).
    #[getter]
    fn last_epoch(&self) -> PyResult<i64> {
        Ok(match &self.core {
            Core::One(c) => c.lock().map_err(|_| poisoned())?.last_epoch,
            Core::Seq { core, .. } => core.lock().map_err(|_| poisoned())?.last_epoch,
        })
    }

    /// The lrs the schedule starts from, one per param group.
    #[getter]
    fn base_lrs(&self) -> PyResult<Vec<f64>> {
        match self.one() {
            Some(c) => Ok(c.lock().map_err(|_| poisoned())?.base_lrs.clone()),
            None => Err(raise(
                Exc::Config,
                "SequentialLR has no base_lrs of its own".into(),
            )),
        }
    }

    /// The optimizer this scheduler drives.
    #[getter]
    fn optimizer(&self, py: Python<'_>) -> Py<PyAny> {
        self.opt.obj.clone_ref(py)
    }

    /// The scheduler's state, with torch's key names.
    fn state_dict(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let st = match &self.core {
            Core::One(c) => c.lock().map_err(|_| poisoned())?.state(),
            Core::Seq { core, .. } => core.lock().map_err(|_| poisoned())?.state().py()?,
        };
        let d = state_to_py(py, &st)?;
        if !self.lambdas.is_empty() {
            let ftype = py.import("types")?.getattr("FunctionType")?;
            let l = PyList::empty(py);
            for f in &self.lambdas {
                let f = f.bind(py);
                if f.is_instance(&ftype)? || !f.hasattr("__dict__")? {
                    l.append(py.None())?;
                } else {
                    l.append(f.getattr("__dict__")?.call_method0("copy")?)?;
                }
            }
            d.bind(py).set_item("lr_lambdas", l)?;
        }
        Ok(d)
    }

    /// Restores a state from `state_dict()` (torch's own dicts load too).
    fn load_state_dict(&self, py: Python<'_>, state_dict: &Bound<'_, PyAny>) -> PyResult<()> {
        let st = dict_to_state(state_dict)?;
        match &self.core {
            Core::One(c) => c.lock().map_err(|_| poisoned())?.load_state(&st).py()?,
            Core::Seq { core, .. } => core.lock().map_err(|_| poisoned())?.load_state(&st).py()?,
        }
        if let Ok(fs) = state_dict.get_item("lr_lambdas") {
            for (f, d) in self.lambdas.iter().zip(fs.try_iter()?) {
                let d = d?;
                if !d.is_none() {
                    f.bind(py)
                        .getattr("__dict__")?
                        .call_method1("update", (d,))?;
                }
            }
        }
        Ok(())
    }
}

macro_rules! torch_sched {
    ($rs:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyLRScheduler, frozen)]
        struct $rs;
    };
}

torch_sched!(
    PyStepLR,
    "StepLR",
    "torch StepLR(optimizer, step_size, gamma=0.1)."
);
torch_sched!(
    PyMultiStepLR,
    "MultiStepLR",
    "torch MultiStepLR(optimizer, milestones, gamma=0.1)."
);
torch_sched!(
    PyExponentialLR,
    "ExponentialLR",
    "torch ExponentialLR(optimizer, gamma)."
);
torch_sched!(
    PyLinearLR,
    "LinearLR",
    "torch LinearLR(optimizer, start_factor, end_factor, total_iters)."
);
torch_sched!(
    PyPolynomialLR,
    "PolynomialLR",
    "torch PolynomialLR(optimizer, total_iters=5, power=1.0)."
);
torch_sched!(
    PyCosineAnnealingLR,
    "CosineAnnealingLR",
    "torch CosineAnnealingLR(optimizer, T_max, eta_min=0)."
);
torch_sched!(
    PyCosineAnnealingWarmRestarts,
    "CosineAnnealingWarmRestarts",
    "torch CosineAnnealingWarmRestarts(optimizer, T_0, T_mult=1, eta_min=0)."
);
torch_sched!(
    PyLambdaLR,
    "LambdaLR",
    "torch LambdaLR(optimizer, lr_lambda)."
);
torch_sched!(
    PyCyclicLR,
    "CyclicLR",
    "torch CyclicLR(optimizer, base_lr, max_lr, ...)."
);
torch_sched!(
    PyOneCycleLR,
    "OneCycleLR",
    "torch OneCycleLR(optimizer, max_lr, total_steps, ...)."
);
torch_sched!(
    PySequentialLR,
    "SequentialLR",
    "torch SequentialLR(optimizer, schedulers, milestones)."
);

type Init<T> = PyResult<PyClassInitializer<T>>;

fn simple<T: pyo3::PyClass<BaseType = PyLRScheduler>>(
    py: Python<'_>,
    optimizer: &Bound<'_, PyAny>,
    who: &str,
    last_epoch: i64,
    make: impl FnOnce() -> crate::Result<LrScheduler>,
    sub: T,
) -> Init<T> {
    check_last_epoch(who, last_epoch)?;
    let opt = Opt::bind(optimizer, who)?;
    let core = make().py()?;
    let base = PyLRScheduler::build(py, opt, core, None, Vec::new())?;
    Ok(PyClassInitializer::from(base).add_subclass(sub))
}

#[pymethods]
impl PyStepLR {
    #[new]
    #[pyo3(signature = (optimizer, step_size, gamma = 0.1, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        step_size: i64,
        gamma: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "StepLR",
            last_epoch,
            || LrScheduler::step_lr(step_size, gamma),
            Self,
        )
    }
}

#[pymethods]
impl PyMultiStepLR {
    #[new]
    #[pyo3(signature = (optimizer, milestones, gamma = 0.1, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        milestones: Vec<i64>,
        gamma: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "MultiStepLR",
            last_epoch,
            || LrScheduler::multi_step(&milestones, gamma),
            Self,
        )
    }
}

#[pymethods]
impl PyExponentialLR {
    #[new]
    #[pyo3(signature = (optimizer, gamma, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        gamma: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "ExponentialLR",
            last_epoch,
            || LrScheduler::exponential(gamma),
            Self,
        )
    }
}

#[pymethods]
impl PyLinearLR {
    #[new]
    #[pyo3(signature = (optimizer, start_factor = 1.0 / 3.0, end_factor = 1.0, total_iters = 5, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        start_factor: f64,
        end_factor: f64,
        total_iters: i64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "LinearLR",
            last_epoch,
            || LrScheduler::linear(start_factor, end_factor, total_iters),
            Self,
        )
    }
}

#[pymethods]
impl PyPolynomialLR {
    #[new]
    #[pyo3(signature = (optimizer, total_iters = 5, power = 1.0, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        total_iters: i64,
        power: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "PolynomialLR",
            last_epoch,
            || LrScheduler::polynomial(total_iters, power),
            Self,
        )
    }
}

#[pymethods]
impl PyCosineAnnealingLR {
    #[new]
    #[pyo3(signature = (optimizer, T_max, eta_min = 0.0, last_epoch = -1))]
    #[allow(non_snake_case)]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        T_max: i64,
        eta_min: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "CosineAnnealingLR",
            last_epoch,
            || LrScheduler::cosine_annealing(T_max, eta_min),
            Self,
        )
    }
}

#[pymethods]
impl PyCosineAnnealingWarmRestarts {
    #[new]
    #[pyo3(signature = (optimizer, T_0, T_mult = 1, eta_min = 0.0, last_epoch = -1))]
    #[allow(non_snake_case)]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        T_0: i64,
        T_mult: i64,
        eta_min: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
            py,
            optimizer,
            "CosineAnnealingWarmRestarts",
            last_epoch,
            || LrScheduler::warm_restarts(T_0, T_mult, eta_min),
            Self,
        )
    }
}

#[pymethods]
impl PyLambdaLR {
    #[new]
    #[pyo3(signature = (optimizer, lr_lambda, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        lr_lambda: &Bound<'_, PyAny>,
        last_epoch: i64,
    ) -> Init<Self> {
        let who = "LambdaLR";
        check_last_epoch(who, last_epoch)?;
        let opt = Opt::bind(optimizer, who)?;
        let n = opt.n_groups(py)?;
        let fns: Vec<Bound<'_, PyAny>> =
            if lr_lambda.is_instance_of::<PyList>() || lr_lambda.is_instance_of::<PyTuple>() {
                let v: Vec<Bound<'_, PyAny>> = lr_lambda.try_iter()?.collect::<PyResult<_>>()?;
                if v.len() != n {
                    return Err(raise(
                        Exc::Config,
                        format!("{who}: expected {n} lr_lambdas, got {}", v.len()),
                    ));
                }
                v
            } else {
                vec![lr_lambda.clone(); n]
            };
        let mut scheds = Vec::new();
        for (i, f) in fns.iter().enumerate() {
            scheds.push(schedule_arg(f, &format!("{who}: lr_lambda[{i}]"))?);
        }
        let core = LrScheduler::lambda(scheds).py()?;
        let keep = fns.into_iter().map(|f| f.unbind()).collect();
        let base = PyLRScheduler::build(py, opt, core, None, keep)?;
        Ok(PyClassInitializer::from(base).add_subclass(Self))
    }
}

#[pymethods]
impl PyCyclicLR {
    #[new]
    #[pyo3(signature = (optimizer, base_lr, max_lr, step_size_up = 2000.0, step_size_down = None,
                        mode = "triangular", gamma = 1.0, scale_fn = None, scale_mode = "cycle",
                        cycle_momentum = true, base_momentum = None, max_momentum = None,
                        last_epoch = -1))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        base_lr: &Bound<'_, PyAny>,
        max_lr: &Bound<'_, PyAny>,
        step_size_up: f64,
        step_size_down: Option<f64>,
        mode: &str,
        gamma: f64,
        scale_fn: Option<&Bound<'_, PyAny>>,
        scale_mode: &str,
        cycle_momentum: bool,
        base_momentum: Option<&Bound<'_, PyAny>>,
        max_momentum: Option<&Bound<'_, PyAny>>,
        last_epoch: i64,
    ) -> Init<Self> {
        let who = "CyclicLR";
        check_last_epoch(who, last_epoch)?;
        let opt = Opt::bind(optimizer, who)?;
        let n = opt.n_groups(py)?;
        let base = per_group(base_lr, who, "base_lr", n)?;
        let max = per_group(max_lr, who, "max_lr", n)?;
        let scale = match scale_fn {
            None => None,
            Some(f) => {
                let by_cycle = match scale_mode {
                    "cycle" => true,
                    "iterations" => false,
                    m => {
                        return Err(raise(
                            Exc::Config,
                            format!("{who}: scale_mode must be 'cycle' or 'iterations', got '{m}'"),
                        ))
                    }
                };
                Some((schedule_arg(f, "CyclicLR scale_fn")?, by_cycle))
            }
        };
        let beta1 = PyLRScheduler::cycle_momentum(who, py, &opt, cycle_momentum)?;
        let momentum = match beta1 {
            None => None,
            Some(_) => {
                let b = match base_momentum {
                    Some(b) => per_group(b, who, "base_momentum", n)?,
                    None => vec![0.8; n],
                };
                let m = match max_momentum {
                    Some(m) => per_group(m, who, "max_momentum", n)?,
                    None => vec![0.9; n],
                };
                Some((b, m))
            }
        };
        let core = LrScheduler::cyclic(
            base,
            max,
            step_size_up,
            step_size_down,
            mode,
            gamma,
            scale,
            momentum,
        )
        .py()?;
        let b = PyLRScheduler::build(py, opt, core, beta1, Vec::new())?;
        Ok(PyClassInitializer::from(b).add_subclass(Self))
    }
}

#[pymethods]
impl PyOneCycleLR {
    #[new]
    #[pyo3(signature = (optimizer, max_lr, total_steps = None, epochs = None, steps_per_epoch = None,
                        pct_start = 0.3, anneal_strategy = "cos", cycle_momentum = true,
                        base_momentum = None, max_momentum = None, div_factor = 25.0,
                        final_div_factor = 1e4, three_phase = false, last_epoch = -1))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        max_lr: &Bound<'_, PyAny>,
        total_steps: Option<i64>,
        epochs: Option<i64>,
        steps_per_epoch: Option<i64>,
        pct_start: f64,
        anneal_strategy: &str,
        cycle_momentum: bool,
        base_momentum: Option<&Bound<'_, PyAny>>,
        max_momentum: Option<&Bound<'_, PyAny>>,
        div_factor: f64,
        final_div_factor: f64,
        three_phase: bool,
        last_epoch: i64,
    ) -> Init<Self> {
        let who = "OneCycleLR";
        check_last_epoch(who, last_epoch)?;
        let opt = Opt::bind(optimizer, who)?;
        let n = opt.n_groups(py)?;
        let total = match (total_steps, epochs, steps_per_epoch) {
            (Some(t), _, _) => t,
            (None, Some(e), Some(s)) => {
                if e <= 0 {
                    return Err(raise(
                        Exc::Config,
                        format!("{who}: epochs must be >= 1, got {e}"),
                    ));
                }
                if s <= 0 {
                    return Err(raise(
                        Exc::Config,
                        format!("{who}: steps_per_epoch must be >= 1, got {s}"),
                    ));
                }
                e * s
            }
            _ => {
                return Err(raise(
                    Exc::Config,
                    format!("{who}: give either total_steps or (epochs and steps_per_epoch)"),
                ))
            }
        };
        let max = per_group(max_lr, who, "max_lr", n)?;
        let beta1 = PyLRScheduler::cycle_momentum(who, py, &opt, cycle_momentum)?;
        let momentum = match beta1 {
            None => None,
            Some(_) => {
                let b = match base_momentum {
                    Some(b) => per_group(b, who, "base_momentum", n)?,
                    None => vec![0.85; n],
                };
                let m = match max_momentum {
                    Some(m) => per_group(m, who, "max_momentum", n)?,
                    None => vec![0.95; n],
                };
                Some((b, m))
            }
        };
        let core = LrScheduler::one_cycle(
            max,
            total,
            pct_start,
            anneal_strategy,
            div_factor,
            final_div_factor,
            three_phase,
            momentum,
        )
        .py()?;
        let base = PyLRScheduler::build(py, opt, core, beta1, Vec::new())?;
        Ok(PyClassInitializer::from(base).add_subclass(Self))
    }
}

#[pymethods]
impl PySequentialLR {
    #[new]
    #[pyo3(signature = (optimizer, schedulers, milestones, last_epoch = -1))]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        schedulers: &Bound<'_, PyAny>,
        milestones: Vec<i64>,
        last_epoch: i64,
    ) -> Init<Self> {
        let who = "SequentialLR";
        check_last_epoch(who, last_epoch)?;
        let opt = Opt::bind(optimizer, who)?;
        let mut children: Vec<SharedScheduler> = Vec::new();
        let mut beta1 = Vec::new();
        for (i, s) in schedulers.try_iter()?.enumerate() {
            let s = s?;
            let sched = s.downcast::<PyLRScheduler>().map_err(|_| {
                raise(
                    Exc::InputType,
                    format!("{who}: schedulers[{i}] must be a ferrotorch torch-style scheduler (not ReduceLROnPlateau)"),
                )
            })?;
            let sched = sched.get();
            let Some(core) = sched.one() else {
                return Err(raise(
                    Exc::Config,
                    format!("{who}: schedulers[{i}] is a SequentialLR; nesting is not supported"),
                ));
            };
            if !sched.opt.obj.bind(py).is(optimizer) {
                return Err(raise(
                    Exc::Config,
                    format!("{who}: schedulers[{i}] belongs to a different optimizer"),
                ));
            }
            children.push(core.clone() as SharedScheduler);
            beta1.push(sched.beta1);
        }
        SequentialLR::check(children.len(), &milestones).py()?;
        let initial = opt.initial(py, who)?;
        opt.write(py, &initial)?;
        let (core, out) = SequentialLR::new(children, milestones, &initial).py()?;
        opt.apply(py, &out, beta1.first().copied().flatten())?;
        let base = PyLRScheduler {
            core: Core::Seq {
                core: Mutex::new(core),
                beta1,
            },
            opt,
            beta1: None,
            lambdas: Vec::new(),
        };
        Ok(PyClassInitializer::from(base).add_subclass(Self))
    }
}

/// torch ReduceLROnPlateau(optimizer, mode, factor, patience, threshold,
/// threshold_mode, cooldown, min_lr, eps): `step(metrics)`.
#[pyclass(name = "ReduceLROnPlateau", module = "ferrotorch._core", frozen)]
struct PyReduceLROnPlateau {
    core: Mutex<ReduceLROnPlateau>,
    opt: Opt,
}

impl PyReduceLROnPlateau {
    fn lock(&self) -> PyResult<MutexGuard<'_, ReduceLROnPlateau>> {
        self.core.lock().map_err(|_| poisoned())
    }
}

#[pymethods]
impl PyReduceLROnPlateau {
    #[new]
    #[pyo3(signature = (optimizer, mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
                        threshold_mode = "rel", cooldown = 0, min_lr = None, eps = 1e-8))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        mode: &str,
        factor: f64,
        patience: i64,
        threshold: f64,
        threshold_mode: &str,
        cooldown: i64,
        min_lr: Option<&Bound<'_, PyAny>>,
        eps: f64,
    ) -> PyResult<Self> {
        let who = "ReduceLROnPlateau";
        let opt = Opt::bind(optimizer, who)?;
        let cur = opt.read(py)?;
        let (min_lrs, default) = match min_lr {
            None => (vec![0.0; cur.len()], Some(0.0)),
            Some(m) => {
                if let Ok(v) = m.extract::<f64>() {
                    (vec![v; cur.len()], Some(v))
                } else if let Ok(v) = m.extract::<Vec<f64>>() {
                    (v, None)
                } else {
                    return Err(raise(
                        Exc::InputType,
                        format!("{who}: min_lr must be a number or a list of numbers"),
                    ));
                }
            }
        };
        let core = ReduceLROnPlateau::new(
            mode,
            factor,
            patience,
            threshold,
            threshold_mode,
            cooldown,
            min_lrs,
            default,
            eps,
            &cur,
        )
        .py()?;
        Ok(Self {
            core: Mutex::new(core),
            opt,
        })
    }

    /// Records `metrics` and reduces the lrs after `patience` bad epochs.
    #[pyo3(signature = (metrics, epoch = None))]
    fn step(&self, py: Python<'_>, metrics: &Bound<'_, PyAny>, epoch: Option<i64>) -> PyResult<()> {
        let m: f64 = py
            .import("builtins")?
            .getattr("float")?
            .call1((metrics,))?
            .extract()?;
        let cur = self.opt.read(py)?;
        let lrs = self.lock()?.step(m, &cur, epoch).py()?;
        // Unchanged groups keep their value; write only when one moved.
        if lrs != cur {
            self.opt.write(py, &lrs)?;
        }
        Ok(())
    }

    fn get_last_lr(&self) -> PyResult<Vec<f64>> {
        Ok(self.lock()?.last_lr.clone())
    }

    #[getter]
    fn last_epoch(&self) -> PyResult<i64> {
        Ok(self.lock()?.last_epoch)
    }

    #[getter]
    fn best(&self) -> PyResult<f64> {
        Ok(self.lock()?.best)
    }

    #[getter]
    fn num_bad_epochs(&self) -> PyResult<i64> {
        Ok(self.lock()?.num_bad_epochs)
    }

    #[getter]
    fn cooldown_counter(&self) -> PyResult<i64> {
        Ok(self.lock()?.cooldown_counter)
    }

    #[getter]
    fn in_cooldown(&self) -> PyResult<bool> {
        Ok(self.lock()?.in_cooldown())
    }

    #[getter]
    fn optimizer(&self, py: Python<'_>) -> Py<PyAny> {
        self.opt.obj.clone_ref(py)
    }

    fn state_dict(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        state_to_py(py, &self.lock()?.state())
    }

    fn load_state_dict(&self, state_dict: &Bound<'_, PyAny>) -> PyResult<()> {
        let st = dict_to_state(state_dict)?;
        self.lock()?.load_state(&st).py()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySchedule>()?;
    m.add_class::<PyStepDecay>()?;
    m.add_class::<PyCosineScheduler>()?;
    m.add_class::<PyWarmupScheduler>()?;
    m.add_class::<PyExponentialSchedule>()?;
    m.add_class::<PyMultiStepSchedule>()?;
    m.add_class::<PyOneCycleSchedule>()?;
    m.add_class::<PyCyclicSchedule>()?;
    m.add_class::<PyPlateauScheduler>()?;
    m.add_class::<PyLRScheduler>()?;
    m.add_class::<PyStepLR>()?;
    m.add_class::<PyMultiStepLR>()?;
    m.add_class::<PyExponentialLR>()?;
    m.add_class::<PyLinearLR>()?;
    m.add_class::<PyPolynomialLR>()?;
    m.add_class::<PyCosineAnnealingLR>()?;
    m.add_class::<PyCosineAnnealingWarmRestarts>()?;
    m.add_class::<PyLambdaLR>()?;
    m.add_class::<PyCyclicLR>()?;
    m.add_class::<PyOneCycleLR>()?;
    m.add_class::<PySequentialLR>()?;
    m.add_class::<PyReduceLROnPlateau>()?;
    m.add_function(wrap_pyfunction!(kaun_constant, m)?)?;
    m.add_function(wrap_pyfunction!(kaun_cosine_decay, m)?)?;
    m.add_function(wrap_pyfunction!(kaun_warmup_linear, m)?)?;
    m.add_function(wrap_pyfunction!(kaun_warmup_cosine, m)?)?;
    m.add_function(wrap_pyfunction!(kaun_exponential_decay, m)?)?;
    m.add_function(wrap_pyfunction!(kaun_join, m)?)?;
    Ok(())
}
