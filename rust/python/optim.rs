//! Optimizer binding over `crate::optim`: one class, `Optimizer`, built by
//! algorithm name; `ferrotorch.optim` subclasses it per algorithm. Converts
//! torch-style param groups and state dicts; no math here.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tch::Tensor;

use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::{tensor_arg, tensor_list, to_py};
use crate::optim::{registry, HValue, Hyper, Impl, Optimizer, ParamGroup, ScheduledLr, StateDict};

/// torch.optim keys that select torch's own code paths; ferrotorch picks its
/// path with `implementation=`, so these are accepted and ignored.
const TORCH_ONLY_KEYS: [&str; 6] = [
    "foreach",
    "fused",
    "capturable",
    "differentiable",
    "param_names",
    "initial_lr",
];

fn hvalue(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Option<HValue>> {
    if v.is_none() {
        return Ok(None);
    }
    if let Ok(b) = v.extract::<bool>() {
        return Ok(Some(HValue::B(b)));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(Some(HValue::F(f)));
    }
    if let Ok((a, b)) = v.extract::<(f64, f64)>() {
        return Ok(Some(HValue::P(a, b)));
    }
    // A 0-dim tensor (torch allows a tensor lr).
    if let Ok(t) = tensor_arg(v, key) {
        if let Ok(x) = t.f_double_value(&[]) {
            return Ok(Some(HValue::F(x)));
        }
    }
    Err(raise(
        Exc::Config,
        format!("hyperparameter '{key}': unsupported value {v}"),
    ))
}

fn hyper_from_dict(d: &Bound<'_, PyDict>) -> PyResult<Hyper> {
    let mut h = Hyper::default();
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        if key == "params" || TORCH_ONLY_KEYS.contains(&key.as_str()) {
            continue;
        }
        if let Some(v) = hvalue(&key, &v)? {
            h.set(&key, v);
        }
    }
    Ok(h)
}

fn hyper_to_dict<'py>(py: Python<'py>, h: &Hyper) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in &h.0 {
        match v {
            HValue::F(x) => d.set_item(k, x)?,
            HValue::B(b) => d.set_item(k, b)?,
            HValue::P(a, b) => d.set_item(k, (a, b))?,
        }
    }
    Ok(d)
}

/// `params`: tensors, or torch-style dicts `{"params": [...], "lr": ...}`.
fn groups_arg(params: &Bound<'_, PyAny>) -> PyResult<Vec<ParamGroup>> {
    let items: Vec<Bound<'_, PyAny>> = match params.try_iter() {
        Ok(it) => it.collect::<PyResult<_>>()?,
        Err(_) => {
            return Ok(vec![ParamGroup::new(
                tensor_list(params, "params")?,
                Hyper::default(),
            )
            .py()?])
        }
    };
    if items.iter().any(|i| i.is_instance_of::<PyDict>()) {
        let mut groups = Vec::new();
        for (gi, item) in items.iter().enumerate() {
            let d = item.downcast::<PyDict>().map_err(|_| {
                raise(
                    Exc::InputType,
                    format!("params[{gi}]: mix of dicts and tensors; use dicts for every group"),
                )
            })?;
            let ps = d.get_item("params")?.ok_or_else(|| {
                raise(
                    Exc::Config,
                    format!("parameter group {gi} has no 'params' key"),
                )
            })?;
            groups.push(
                ParamGroup::new(
                    tensor_list(&ps, &format!("params[{gi}]['params']"))?,
                    hyper_from_dict(d)?,
                )
                .py()?,
            );
        }
        return Ok(groups);
    }
    let ts = items
        .iter()
        .enumerate()
        .map(|(i, t)| tensor_arg(t, &format!("params[{i}]")))
        .collect::<PyResult<Vec<Tensor>>>()?;
    Ok(vec![ParamGroup::new(ts, Hyper::default()).py()?])
}

/// The Rust optimizer of `ferrotorch.optim` (each class holds one as `_core`).
#[pyclass(name = "Optimizer", module = "ferrotorch._core", frozen)]
pub struct PyOptimizer {
    pub inner: Arc<Mutex<dyn Optimizer>>,
}

/// The Rust optimizer behind `ob`: a core optimizer itself, or an object
/// whose `__dict__` holds one as `_core` (a `ferrotorch.optim` class, or a
/// wrapper that re-classed one and copied its `__dict__`, as Lightning's
/// and Fabric's do). Read from the instance dict only, so no property or
/// `__getattr__` of a wrapper runs.
pub fn core_of(ob: &Bound<'_, PyAny>) -> Option<Arc<Mutex<dyn Optimizer>>> {
    if let Ok(o) = ob.downcast::<PyOptimizer>() {
        return Some(o.get().inner.clone());
    }
    let d = ob.getattr(pyo3::intern!(ob.py(), "__dict__")).ok()?;
    let core = d.downcast::<PyDict>().ok()?.get_item("_core").ok()??;
    core.downcast::<PyOptimizer>()
        .ok()
        .map(|o| o.get().inner.clone())
}

impl PyOptimizer {
    fn lock(&self) -> PyResult<MutexGuard<'_, dyn Optimizer + 'static>> {
        self.inner.lock().map_err(|_| {
            raise(
                Exc::Internal,
                "optimizer unusable: an earlier step panicked".into(),
            )
        })
    }
}

#[pymethods]
impl PyOptimizer {
    #[new]
    #[pyo3(signature = (algorithm, params, defaults, implementation = "auto"))]
    fn new(
        algorithm: &str,
        params: &Bound<'_, PyAny>,
        defaults: &Bound<'_, PyDict>,
        implementation: &str,
    ) -> PyResult<Self> {
        let groups = groups_arg(params)?;
        let imp = Impl::from_name(implementation).py()?;
        // Kaun's `~lr:schedule`: a schedule or callable as lr wraps the optimizer.
        let schedule = match defaults.get_item("lr")? {
            Some(lr) if lr.is_callable() && !lr.hasattr("dtype")? => {
                let s = super::sched::schedule_arg(&lr, "lr")?;
                let d = defaults.copy()?;
                d.set_item("lr", s.try_lr(s.first_step()).py()?)?;
                Some((s, d))
            }
            _ => None,
        };
        let Some((s, d)) = schedule else {
            return Ok(PyOptimizer {
                inner: registry::build_shared(algorithm, hyper_from_dict(defaults)?, groups, imp)
                    .py()?,
            });
        };
        let inner = registry::build(algorithm, hyper_from_dict(&d)?, groups, imp).py()?;
        Ok(PyOptimizer {
            inner: Arc::new(Mutex::new(ScheduledLr::new(inner, s).py()?)),
        })
    }

    /// Updates every parameter that has a gradient (GIL released).
    fn step(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        py.allow_threads(move || match inner.lock() {
            Ok(mut o) => o.step(),
            Err(_) => Err(crate::Error::Internal(
                "optimizer unusable: an earlier step panicked".into(),
            )),
        })
        .py()
    }

    /// Sets every gradient to None.
    #[pyo3(signature = (set_to_none = true))]
    fn zero_grad(&self, set_to_none: bool) -> PyResult<()> {
        if !set_to_none {
            return Err(raise(
                Exc::Config,
                "zero_grad: only set_to_none=True is supported".into(),
            ));
        }
        self.lock()?.zero_grad().py()
    }

    /// The learning rate of the first group.
    #[getter]
    fn lr(&self) -> PyResult<f64> {
        Ok(self.lock()?.lr())
    }

    /// Sets the learning rate of every group.
    fn set_lr(&self, lr: f64) -> PyResult<()> {
        self.lock()?.set_lr(lr).py()
    }

    fn set_group_lr(&self, index: usize, lr: f64) -> PyResult<()> {
        self.lock()?.set_group_lr(index, lr).py()
    }

    /// Multiplies every group's learning rate by `factor`.
    fn scale_lr(&self, factor: f64) -> PyResult<()> {
        self.lock()?.scale_lr(factor).py()
    }

    #[getter]
    fn implementation(&self) -> PyResult<&'static str> {
        Ok(self.lock()?.implementation().name())
    }

    #[getter]
    fn algorithm(&self) -> PyResult<String> {
        Ok(self.lock()?.name().to_string())
    }

    fn num_groups(&self) -> PyResult<usize> {
        Ok(self.lock()?.num_groups())
    }

    /// Group `index`'s hyperparameters as a dict (a copy).
    fn group_hyper<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyDict>> {
        let h = self.lock()?.group_hyper(index).py()?;
        hyper_to_dict(py, &h)
    }

    /// Sets one hyperparameter of group `index` (validated).
    fn set_group_hyper(&self, index: usize, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = hvalue(key, value)?.ok_or_else(|| {
            raise(
                Exc::Config,
                format!("hyperparameter '{key}' cannot be None"),
            )
        })?;
        self.lock()?.set_group_hyper(index, key, v).py()
    }

    fn group_params(&self, py: Python<'_>, index: usize) -> PyResult<Vec<PyObject>> {
        let ps = self.lock()?.group_params(index);
        ps.iter().map(|t| to_py(py, t)).collect()
    }

    /// Adds a group: a dict `{"params": [...], **hyperparameters}`.
    fn add_param_group(&self, group: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut gs = groups_arg(&PyList::new(group.py(), [group])?.into_any())?;
        let g = gs
            .pop()
            .ok_or_else(|| raise(Exc::Config, "add_param_group: empty group".into()))?;
        self.lock()?.add_param_group(g).py()
    }

    /// torch.optim's layout: {"state": {id: {name: tensor}}, "param_groups":
    /// [{"params": [ids], **hyperparameters}]}. Tensors are the live state.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let sd = self.lock()?.state_dict();
        let state = PyDict::new(py);
        for (id, entries) in &sd.state {
            let d = PyDict::new(py);
            for (name, t) in entries {
                d.set_item(name, to_py(py, t)?)?;
            }
            state.set_item(id, d)?;
        }
        let groups = PyList::empty(py);
        for (h, ids) in &sd.groups {
            let d = hyper_to_dict(py, h)?;
            d.set_item("params", PyList::new(py, ids)?)?;
            groups.append(d)?;
        }
        let out = PyDict::new(py);
        out.set_item("state", state)?;
        out.set_item("param_groups", groups)?;
        Ok(out)
    }

    /// Loads a state dict in torch.optim's layout (from ferrotorch or from
    /// torch.optim); state tensors are copied to the parameters' device and
    /// dtype. Validated first: on error nothing changes.
    fn load_state_dict(&self, sd: &Bound<'_, PyDict>) -> PyResult<()> {
        let groups_ob = sd
            .get_item("param_groups")?
            .ok_or_else(|| raise(Exc::Config, "state dict has no 'param_groups'".into()))?;
        let state_ob = sd
            .get_item("state")?
            .ok_or_else(|| raise(Exc::Config, "state dict has no 'state'".into()))?;
        let mut groups = Vec::new();
        for (gi, g) in groups_ob.try_iter()?.enumerate() {
            let g = g?;
            let d = g
                .downcast::<PyDict>()
                .map_err(|_| raise(Exc::Config, format!("param_groups[{gi}] is not a dict")))?;
            let ids: Vec<usize> = d
                .get_item("params")?
                .ok_or_else(|| raise(Exc::Config, format!("param_groups[{gi}] has no 'params'")))?
                .extract()?;
            groups.push((hyper_from_dict(d)?, ids));
        }
        let state_d = state_ob
            .downcast::<PyDict>()
            .map_err(|_| raise(Exc::Config, "'state' is not a dict".into()))?;
        let mut state = Vec::new();
        for (k, v) in state_d.iter() {
            let id: usize = k.extract()?;
            let d = v
                .downcast::<PyDict>()
                .map_err(|_| raise(Exc::Config, format!("state[{id}] is not a dict")))?;
            let mut entries = Vec::new();
            for (name, t) in d.iter() {
                if t.is_none() {
                    continue; // torch's SGD stores momentum_buffer=None before its first step
                }
                let name: String = name.extract()?;
                let t = if let Ok(x) = t.extract::<f64>() {
                    Tensor::f_from_slice(&[x as f32])
                        .and_then(|t| t.f_reshape([]))
                        .map_err(crate::Error::from)
                        .py()?
                } else {
                    tensor_arg(&t, &format!("state[{id}]['{name}']"))?
                };
                entries.push((name, t));
            }
            state.push((id, entries));
        }
        self.lock()?
            .load_state_dict(StateDict { groups, state })
            .py()
    }

    /// The state of parameter `index` (global over groups) as a dict of
    /// tensors, or None before its first step.
    fn param_state<'py>(
        &self,
        py: Python<'py>,
        index: usize,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let sd = self.lock()?.state_dict();
        let Some((_, entries)) = sd.state.iter().find(|(i, _)| *i == index) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        for (name, t) in entries {
            d.set_item(name, to_py(py, t)?)?;
        }
        Ok(Some(d))
    }

    fn __repr__(&self) -> PyResult<String> {
        let o = self.lock()?;
        Ok(format!(
            "{}({} groups, {})",
            o.name(),
            o.num_groups(),
            o.implementation().name()
        ))
    }
}

/// Every optimizer name, lower case (the core's registry).
#[pyfunction]
fn optimizer_names() -> Vec<&'static str> {
    registry::NAMES.to_vec()
}

/// Every hyperparameter of the optimizer `name` with its default, under
/// torch's keys (ConfigError for an unknown name).
#[pyfunction]
fn optimizer_defaults<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    hyper_to_dict(py, &registry::defaults(name).py()?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOptimizer>()?;
    m.add_function(wrap_pyfunction!(optimizer_names, m)?)?;
    m.add_function(wrap_pyfunction!(optimizer_defaults, m)?)?;
    Ok(())
}
