//! Losses over `crate::loss`: one function per loss, and the class forms
//! (`MSELoss()`, `CrossEntropyLoss(label_smoothing=0.1)`, ...), each a
//! subclass of `Loss`, which holds the core `LossSpec` (so a Trainer given
//! one keeps its step in Rust).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tch::Tensor;

use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::{tensor_arg, to_py};
use crate::loss::{loss_table, LossKind, LossSpec, OptValue, Reduction, Weight};

type Opt<'a, 'py> = Option<&'a Bound<'py, PyAny>>;

fn weight(kind: LossKind, arg: &str, w: Opt<'_, '_>) -> PyResult<Option<Weight>> {
    w.filter(|w| !w.is_none())
        .map(|w| {
            Ok(Weight::new(tensor_arg(
                w,
                &format!("{} {arg}", kind.fn_name()),
            )?))
        })
        .transpose()
}

/// A tensor argument; CTC's lengths may also be ints or lists of ints.
fn input(kind: LossKind, name: &str, ob: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let what = format!("{} {name}", kind.fn_name());
    match tensor_arg(ob, &what) {
        Ok(t) => Ok(t),
        Err(e) if name.ends_with("_lengths") => {
            if let Ok(v) = ob.extract::<Vec<i64>>() {
                return Tensor::f_from_slice(&v).map_err(|e| raise(Exc::Torch, e.to_string()));
            }
            if let Ok(v) = ob.extract::<i64>() {
                return Ok(Tensor::from(v));
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn run(py: Python<'_>, s: &LossSpec, args: &[&Bound<'_, PyAny>]) -> PyResult<PyObject> {
    let names = s.kind.inputs();
    if args.len() != names.len() {
        return Err(raise(
            Exc::InputType,
            format!(
                "{} takes {} tensors ({}), got {}",
                s.kind.fn_name(),
                names.len(),
                names.join(", "),
                args.len()
            ),
        ));
    }
    let ts = args
        .iter()
        .zip(names)
        .map(|(a, n)| input(s.kind, n, a))
        .collect::<PyResult<Vec<_>>>()?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    to_py(py, &s.compute_args(&refs).py()?)
}

// ---- classes --------------------------------------------------------------

/// Base of the loss classes: a built-in loss with its options.
#[pyclass(name = "Loss", module = "ferrotorch._core", subclass, frozen)]
pub struct PyLoss {
    pub spec: LossSpec,
}

#[pymethods]
impl PyLoss {
    /// A (pred, target) loss by name with default options (`Loss("mse")`).
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        Ok(PyLoss {
            spec: LossSpec::from_name(name).py()?,
        })
    }

    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<PyObject> {
        self.compute(py, args)
    }

    /// The loss of the given tensors (`loss.compute(pred, target)`).
    #[pyo3(signature = (*args))]
    fn compute(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<PyObject> {
        let items: Vec<Bound<'_, PyAny>> = args.iter().collect();
        let refs: Vec<&Bound<'_, PyAny>> = items.iter().collect();
        run(py, &self.spec, &refs)
    }

    /// The canonical name (`Trainer(loss=name)` accepts it when the loss
    /// takes (pred, target)).
    #[getter]
    fn name(&self) -> &'static str {
        self.spec.kind.name()
    }

    #[getter]
    fn reduction(&self) -> &'static str {
        self.spec.opts.reduction.name()
    }

    /// The names of the tensors the loss takes, in order.
    #[getter]
    fn inputs(&self) -> Vec<&'static str> {
        self.spec.kind.inputs().to_vec()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let cls = slf.get_type().name()?.to_string();
        let opts: Vec<String> = slf
            .get()
            .spec
            .option_pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Ok(format!("{cls}({})", opts.join(", ")))
    }
}

/// The Rust loss `ob` is, or that a `ferrotorch.losses` class instance (a
/// torch module holding it as `_core`) runs as: its `_ft_node()` says, None
/// when Python must run (an overridden forward, hooks).
pub fn loss_core<'py>(ob: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyLoss>>> {
    if let Ok(l) = ob.downcast::<PyLoss>() {
        return Ok(Some(l.clone()));
    }
    match ob.getattr(pyo3::intern!(ob.py(), "_ft_node")) {
        Ok(node) => Ok(node.call0()?.downcast_into::<PyLoss>().ok()),
        Err(_) => Ok(None),
    }
}

/// Whether `ob` is a Rust loss or holds one as `_core` (in its `__dict__`).
pub fn holds_loss(ob: &Bound<'_, PyAny>) -> bool {
    if ob.downcast::<PyLoss>().is_ok() {
        return true;
    }
    ob.getattr(pyo3::intern!(ob.py(), "__dict__"))
        .ok()
        .and_then(|d| d.get_item("_core").ok())
        .is_some_and(|c| c.downcast::<PyLoss>().is_ok())
}

fn class<T: pyo3::PyClass<BaseType = PyLoss>>(
    sub: T,
    s: LossSpec,
) -> PyResult<PyClassInitializer<T>> {
    // Options are checked when given, not at the first call.
    s.validate().py()?;
    Ok(PyClassInitializer::from(PyLoss { spec: s }).add_subclass(sub))
}

/// A Python argument of a table type.
macro_rules! py_ty {
    (Reduction) => { &str };
    (Weight) => { Opt<'_, '_> };
    ($t:ident) => { $t };
}

/// Sets the option `$name` of `$s` from its Python argument.
macro_rules! py_set {
    ($s:ident, Reduction, $name:ident) => {
        $s.opts.$name = Reduction::for_loss($s.kind, $name).py()?;
    };
    ($s:ident, Weight, $name:ident) => {
        $s.opts.$name = weight($s.kind, stringify!($name), $name)?;
    };
    ($s:ident, $t:ident, $name:ident) => {
        $s.opts.$name = $name;
    };
}

/// Each loss's function and class, from the core's table (`loss/table.rs`).
macro_rules! bindings {
    ($($kind:ident $func:ident $class:ident [$($input:ident),*]
       [$(($opt:ident : $ty:ident = $($d:tt)+)),*] $doc:literal;)*) => {
        $(
            #[doc = $doc]
            #[pyfunction]
            #[pyo3(signature = ($($input,)* $($opt = $($d)+),*))]
            #[allow(clippy::too_many_arguments)]
            fn $func(
                py: Python<'_>,
                $($input: &Bound<'_, PyAny>,)*
                $($opt: py_ty!($ty)),*
            ) -> PyResult<PyObject> {
                let mut s = LossSpec::new(LossKind::$kind);
                $(py_set!(s, $ty, $opt);)*
                run(py, &s, &[$($input),*])
            }

            #[doc = $doc]
            #[pyclass(module = "ferrotorch._core", extends = PyLoss, frozen)]
            pub struct $class;

            #[pymethods]
            impl $class {
                #[new]
                #[pyo3(signature = ($($opt = $($d)+),*))]
                fn new($($opt: py_ty!($ty)),*) -> PyResult<PyClassInitializer<Self>> {
                    let mut s = LossSpec::new(LossKind::$kind);
                    $(py_set!(s, $ty, $opt);)*
                    class($class, s)
                }
            }
        )*

        fn register_table(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(
                m.add_function(wrap_pyfunction!($func, m)?)?;
                m.add_class::<$class>()?;
            )*
            Ok(())
        }
    };
}

loss_table!(bindings);

/// Every loss of the table: (function, class, inputs, {option: default}).
#[pyfunction]
fn loss_table(py: Python<'_>) -> PyResult<Vec<LossRow<'_>>> {
    LossKind::ALL
        .iter()
        .map(|&k| {
            let d = PyDict::new(py);
            for (name, v) in LossSpec::new(k).options() {
                d.set_item(name, opt_py(py, &v)?)?;
            }
            Ok((k.fn_name(), k.class_name(), k.inputs().to_vec(), d))
        })
        .collect()
}

type LossRow<'py> = (
    &'static str,
    &'static str,
    Vec<&'static str>,
    Bound<'py, PyDict>,
);

fn opt_py(py: Python<'_>, v: &OptValue) -> PyResult<PyObject> {
    Ok(match v {
        OptValue::Float(x) => x.into_pyobject(py)?.into_any().unbind(),
        OptValue::Int(x) => x.into_pyobject(py)?.into_any().unbind(),
        OptValue::Bool(x) => x.into_pyobject(py)?.to_owned().into_any().unbind(),
        OptValue::Str(x) => x.into_pyobject(py)?.into_any().unbind(),
        OptValue::Tensor(Some(w)) => to_py(py, &w.tensor())?,
        OptValue::Tensor(None) => py.None(),
    })
}

/// The names `Trainer(loss=...)` accepts.
#[pyfunction]
fn loss_names() -> Vec<&'static str> {
    LossKind::NAMES.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(loss_names, m)?)?;
    m.add_function(wrap_pyfunction!(loss_table, m)?)?;
    m.add_class::<PyLoss>()?;
    register_table(m)
}
