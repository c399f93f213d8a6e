//! `crate::sched::groups::Groups` over a Python optimizer: torch-style
//! `param_groups` dicts (torch's optimizers and ferrotorch's, whose groups
//! are live views), or an object with only `lr` / `set_lr`. Conversion
//! only: the protocol is in `crate::sched::bound`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::optim::HValue;
use crate::python::errors::{raise, stash, Exc};
use crate::python::torch_optim::{param_groups, set_group_value};
use crate::sched::groups::{Groups, Momentum};
use crate::{Error, Result};

pub struct PyGroups {
    pub obj: Py<PyAny>,
    /// False for an object with only `lr` / `set_lr`: one group, whose
    /// scheduler keys are kept here.
    dicts: bool,
    extras: Mutex<BTreeMap<String, f64>>,
}

impl PyGroups {
    pub fn bind(ob: &Bound<'_, PyAny>, who: &str) -> PyResult<Self> {
        let dicts = ob.hasattr("param_groups")?;
        let lr_api = ob.hasattr("lr")? && ob.hasattr("set_lr")?;
        if !(dicts || lr_api) {
            return Err(raise(
                Exc::InputType,
                format!(
                    "{who}: expected an optimizer (torch-style param_groups, or an object \
                     with lr / set_lr), got {}",
                    ob.get_type().name()?
                ),
            ));
        }
        Ok(Self {
            obj: ob.clone().unbind(),
            dicts,
            extras: Mutex::new(BTreeMap::new()),
        })
    }

    fn with<T>(&self, what: &str, f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>) -> Result<T> {
        Python::with_gil(|py| f(self.obj.bind(py)).map_err(|e| stash(e, what)))
    }

    fn group<'py>(ob: &Bound<'py, PyAny>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        param_groups(ob)?
            .into_iter()
            .nth(i)
            .ok_or_else(|| raise(Exc::Config, format!("param_groups[{i}] does not exist")))
    }

    fn extras(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, f64>>> {
        self.extras
            .lock()
            .map_err(|_| Error::Internal("scheduler is poisoned".into()))
    }
}

impl Groups for PyGroups {
    fn count(&self) -> Result<usize> {
        if !self.dicts {
            return Ok(1);
        }
        self.with("param_groups", |o| Ok(param_groups(o)?.len()))
    }

    fn lrs(&self) -> Result<Vec<f64>> {
        self.with("lr", |o| {
            if self.dicts {
                param_groups(o)?
                    .iter()
                    .map(|g| g.get_item("lr")?.extract::<f64>())
                    .collect()
            } else {
                Ok(vec![o.getattr("lr")?.extract::<f64>()?])
            }
        })
    }

    fn set_lrs(&self, lrs: &[f64]) -> Result<()> {
        self.with("lr", |o| {
            if self.dicts {
                for (g, &lr) in param_groups(o)?.iter().zip(lrs) {
                    set_group_value(g, "lr", &HValue::F(lr))?;
                }
            } else if let Some(&lr) = lrs.first() {
                o.call_method1("set_lr", (lr,))?;
            }
            Ok(())
        })
    }

    fn get(&self, i: usize, key: &str) -> Result<Option<f64>> {
        if !self.dicts {
            return Ok(self.extras()?.get(key).copied());
        }
        self.with(key, |o| {
            let g = Self::group(o, i)?;
            if !g.contains(key)? {
                return Ok(None);
            }
            g.get_item(key)?.extract::<f64>().map(Some)
        })
    }

    fn set(&self, i: usize, key: &str, v: f64) -> Result<()> {
        if !self.dicts {
            self.extras()?.insert(key.to_string(), v);
            return Ok(());
        }
        self.with(key, |o| {
            set_group_value(&Self::group(o, i)?, key, &HValue::F(v))
        })
    }

    fn setdefault_from(&self, i: usize, key: &str, from: &str) -> Result<()> {
        if !self.dicts {
            let lr = self.lrs()?[0];
            self.extras()?.entry(key.to_string()).or_insert(lr);
            return Ok(());
        }
        self.with(key, |o| {
            let g = Self::group(o, i)?;
            if !g.contains(key)? {
                let v = g.get_item(from)?;
                // torch clones a tensor lr so that initial_lr does not move.
                let v = if v.hasattr("clone")? {
                    v.call_method0("clone")?
                } else {
                    v
                };
                g.set_item(key, v)?;
            }
            Ok(())
        })
    }

    fn momentum(&self) -> Result<Option<Momentum>> {
        self.with("defaults", |o| {
            // torch reads `defaults`; without them the first group has the keys.
            let d = if o.hasattr("defaults")? {
                o.getattr("defaults")?
            } else if self.dicts {
                match param_groups(o)?.into_iter().next() {
                    Some(g) => g,
                    None => return Ok(None),
                }
            } else {
                return Ok(None);
            };
            Ok(if d.contains("betas")? {
                Some(Momentum::Beta1)
            } else if d.contains("momentum")? {
                Some(Momentum::Momentum)
            } else {
                None
            })
        })
    }

    fn set_momentum(&self, i: usize, kind: Momentum, m: f64) -> Result<()> {
        self.with("momentum", |o| {
            let g = Self::group(o, i)?;
            match kind {
                Momentum::Momentum => g.set_item("momentum", m),
                Momentum::Beta1 => {
                    let py = o.py();
                    let betas = g.get_item("betas")?;
                    let mut items: Vec<Bound<'_, PyAny>> =
                        betas.try_iter()?.collect::<PyResult<_>>()?;
                    if items.is_empty() {
                        return Err(raise(Exc::Config, "param group 'betas' is empty".into()));
                    }
                    items[0] = m.into_pyobject(py)?.into_any();
                    g.set_item("betas", PyTuple::new(py, items)?)
                }
            }
        })
    }
}
