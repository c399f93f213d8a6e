//! Scheduler state dicts: `crate::sched::state::State` to and from Python
//! dicts with torch's key names.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::python::errors::{raise, Exc};
use crate::sched::state::{State, Val};

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

pub(super) fn state_to_py(py: Python<'_>, s: &State) -> PyResult<Py<PyDict>> {
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

pub(super) fn dict_to_state(ob: &Bound<'_, PyAny>) -> PyResult<State> {
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
