//! A torch.optim.Optimizer (any Python object with `step`, `zero_grad` and
//! `param_groups`) as a core `Optimizer`, so the engine can drive it. Every
//! call takes the GIL; the update is torch's own Python `step`. Learning-rate
//! and hyperparameter reads and writes go through `param_groups`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tch::Tensor;

use super::errors::stash;
use super::tensor::{tensor_arg, to_py};
use crate::optim::{HValue, Hyper, Impl, Optimizer, ParamGroup, StateDict};
use crate::{Error, Result};

pub struct TorchOptimizer {
    obj: PyObject,
    label: String,
}

impl TorchOptimizer {
    pub fn new(ob: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(TorchOptimizer {
            obj: ob.clone().unbind(),
            label: ob.get_type().name()?.to_string(),
        })
    }

    fn with<T>(&self, what: &str, f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>) -> Result<T> {
        Python::with_gil(|py| {
            f(self.obj.bind(py)).map_err(|e| stash(e, &format!("{}.{what}", self.label)))
        })
    }
}

/// `optimizer.param_groups` as a list (torch-style optimizers, and
/// ferrotorch's live group views).
pub(super) fn param_groups<'py>(ob: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    ob.getattr("param_groups")?.try_iter()?.collect()
}

/// `group[key] = v`, filling in place when the value is a tensor (as
/// torch's `_update_param_group_val`), so a tensor lr keeps its identity.
pub(super) fn set_group_value(group: &Bound<'_, PyAny>, key: &str, v: &HValue) -> PyResult<()> {
    let old = group.get_item(key).ok();
    if let (Some(old), HValue::F(x)) = (&old, v) {
        if old.hasattr("fill_")? {
            old.call_method1("fill_", (*x,))?;
            return Ok(());
        }
    }
    match v {
        HValue::F(x) => group.set_item(key, x),
        HValue::B(b) => group.set_item(key, b),
        HValue::P(a, b) => group.set_item(key, (a, b)),
    }
}

/// One group value as a hyperparameter; values that are not numbers, bools
/// or pairs (None, strings, lists) are left out.
fn hvalue(v: &Bound<'_, PyAny>) -> Option<HValue> {
    if let Ok(b) = v.extract::<bool>() {
        return Some(HValue::B(b));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Some(HValue::F(f));
    }
    if let Ok((a, b)) = v.extract::<(f64, f64)>() {
        return Some(HValue::P(a, b));
    }
    tensor_arg(v, "hyperparameter")
        .ok()
        .and_then(|t| t.f_double_value(&[]).ok())
        .map(HValue::F)
}

impl Optimizer for TorchOptimizer {
    fn name(&self) -> &str {
        &self.label
    }
    fn step(&mut self) -> Result<()> {
        self.with("step", |o| o.call_method0("step").map(|_| ()))
    }
    fn step_amp(&mut self, _: Option<&Tensor>, _: Option<&Tensor>) -> Result<()> {
        Err(Error::Value(format!(
            "{}: a torch optimizer steps through its own step(); the scale is not passed to a kernel",
            self.label
        )))
    }
    fn implementation(&self) -> Impl {
        // Not fused from the engine's point of view: GradScaler unscales and
        // checks before calling step().
        Impl::Foreach
    }
    fn zero_grad(&mut self) -> Result<()> {
        self.with("zero_grad", |o| {
            let kw = PyDict::new(o.py());
            kw.set_item("set_to_none", true)?;
            o.call_method("zero_grad", (), Some(&kw)).map(|_| ())
        })
    }
    fn lr(&self) -> f64 {
        self.group_hyper(0)
            .and_then(|h| h.f("lr"))
            .unwrap_or(f64::NAN)
    }
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.with("param_groups", |o| {
            for g in param_groups(o)? {
                set_group_value(&g, "lr", &HValue::F(lr))?;
            }
            Ok(())
        })
    }
    fn num_groups(&self) -> usize {
        self.with("param_groups", |o| Ok(param_groups(o)?.len()))
            .unwrap_or(0)
    }
    fn group_hyper(&self, i: usize) -> Result<Hyper> {
        self.with("param_groups", |o| {
            let mut h = Hyper::default();
            if let Some(g) = param_groups(o)?.get(i) {
                for k in g.call_method0("keys")?.try_iter()? {
                    let k = k?;
                    let key: String = k.extract()?;
                    if key == "params" {
                        continue;
                    }
                    if let Some(v) = hvalue(&g.get_item(&k)?) {
                        h.set(&key, v);
                    }
                }
            }
            Ok(h)
        })
    }
    fn set_group_hyper(&mut self, i: usize, key: &str, v: HValue) -> Result<()> {
        self.with("param_groups", |o| match param_groups(o)?.get(i) {
            Some(g) => set_group_value(g, key, &v),
            None => Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "group index {i} is out of range"
            ))),
        })
    }
    fn group_params(&self, i: usize) -> Vec<Tensor> {
        self.with("param_groups", |o| {
            let mut out = Vec::new();
            if let Some(g) = param_groups(o)?.get(i) {
                for p in g.get_item("params")?.try_iter()? {
                    out.push(tensor_arg(&p?, "param")?);
                }
            }
            Ok(out)
        })
        .unwrap_or_default()
    }
    fn add_param_group(&mut self, g: ParamGroup) -> Result<()> {
        self.with("add_param_group", |o| {
            let py = o.py();
            let d = PyDict::new(py);
            let ps = g
                .params
                .iter()
                .map(|t| to_py(py, &t.handle()))
                .collect::<PyResult<Vec<_>>>()?;
            d.set_item("params", ps)?;
            for (k, v) in &g.hyper.0 {
                match v {
                    HValue::F(x) => d.set_item(k, x)?,
                    HValue::B(b) => d.set_item(k, b)?,
                    HValue::P(a, b) => d.set_item(k, (a, b))?,
                }
            }
            o.call_method1("add_param_group", (d,)).map(|_| ())
        })
    }
    /// Groups only: a torch optimizer's state lives in Python and is saved
    /// with its own `state_dict()` (as the Trainer's training state does).
    fn state_dict(&self) -> StateDict {
        let mut groups = Vec::new();
        let mut next = 0;
        for i in 0..self.num_groups() {
            let n = self.group_params(i).len();
            groups.push((
                self.group_hyper(i).unwrap_or_default(),
                (next..next + n).collect(),
            ));
            next += n;
        }
        StateDict {
            groups,
            state: Vec::new(),
        }
    }
    fn load_state_dict(&mut self, _: StateDict) -> Result<()> {
        Err(Error::Value(format!(
            "{}: load a torch optimizer's state with its own load_state_dict()",
            self.label
        )))
    }
}
