//! Mixed precision over `crate::amp`: GradScaler, autocast and its guard,
//! cast_parameters. Converts arguments (an optimizer: a ferrotorch one, any
//! other with `param_groups`, or floDl's `(params, step_fn)`) and maps
//! errors; the core decides the step path.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;

use pyo3::types::{PyDict, PyList, PyTuple};
use tch::{Device, Kind, Tensor};

use super::args::extract;
use super::errors::{raise, stash, Exc, IntoPyResult};
use super::optim::{core_of, PyOptimizer};
use super::tensor::{tensor_arg, tensor_list, to_py};
use crate::amp::{
    self, AutocastDevice, GradScaler, ScalerConfig, ScalerState, StepPath, PARAMS_KEY,
};
use crate::optim::Impl;

/// A dtype from a `torch.dtype` or a name (`"bfloat16"`, `"float16"`, ...).
pub(super) fn kind_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Kind> {
    let text = match ob.extract::<String>() {
        Ok(s) => s,
        Err(_) => ob.str()?.to_string(),
    };
    let name = text.strip_prefix("torch.").unwrap_or(&text);
    Ok(match name {
        "float16" | "half" | "fp16" => Kind::Half,
        "bfloat16" | "bf16" => Kind::BFloat16,
        "float32" | "float" | "fp32" => Kind::Float,
        "float64" | "double" | "fp64" => Kind::Double,
        _ => {
            return Err(raise(
                Exc::DType,
                format!("{what}: expected a floating-point torch.dtype, got {text}"),
            ))
        }
    })
}

/// A mixed-precision dtype (float16 or bfloat16; the core checks).
pub(super) fn amp_kind(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Kind> {
    amp::amp_dtype(kind_arg(ob, what)?, what).py()
}

fn device_type_arg(device_type: Option<&str>) -> PyResult<AutocastDevice> {
    match device_type {
        None => Ok(AutocastDevice::default_here()),
        Some(name) => AutocastDevice::from_name(name).py(),
    }
}

/// "cpu", "cuda", "cuda:1" or a torch.device.
fn device_arg(ob: &Bound<'_, PyAny>) -> PyResult<Device> {
    let text = match ob.extract::<String>() {
        Ok(s) => s,
        Err(_) => ob.str()?.to_string(),
    };
    match text.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        t => match t.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Ok(Device::Cuda(i)),
            _ => Err(raise(
                Exc::Config,
                format!("GradScaler: device must be 'cpu', 'cuda' or 'cuda:N', got '{t}'"),
            )),
        },
    }
}

/// Every parameter of an optimizer: a ferrotorch one, or any object with
/// torch-style `param_groups` (a list of dicts with "params").
fn optimizer_params(opt: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    if let Some(o) = core_of(opt) {
        let inner = o.lock().map_err(|_| poisoned())?;
        return Ok(amp::all_params(&*inner));
    }
    let groups = opt.getattr("param_groups").map_err(|_| {
        raise(
            Exc::InputType,
            format!(
                "GradScaler: expected an optimizer (an object with param_groups), got {}",
                opt.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ),
        )
    })?;
    let mut out = Vec::new();
    for (i, g) in groups.try_iter()?.enumerate() {
        let g = g?;
        let ps = g.get_item("params")?;
        out.extend(tensor_list(&ps, &format!("param_groups[{i}]['params']"))?);
    }
    Ok(out)
}

fn poisoned() -> PyErr {
    raise(
        Exc::Torch,
        "optimizer unusable: an earlier step panicked".into(),
    )
}

fn missing_step_fn() -> PyErr {
    raise(Exc::InputType, "GradScaler.step: step_fn missing".into())
}

fn is_optimizer(ob: &Bound<'_, PyAny>) -> bool {
    core_of(ob).is_some() || ob.hasattr("param_groups").unwrap_or(false)
}

/// The core's defaults, which the constructor's signature reads.
const D: ScalerConfig = ScalerConfig::DEFAULTS;

/// Dynamic loss scaling, equal to `torch.amp.GradScaler` step by step
/// (see `ferrotorch.amp`).
#[pyclass(name = "GradScaler", module = "ferrotorch._core", subclass, frozen)]
pub struct PyGradScaler {
    pub(super) inner: Arc<Mutex<GradScaler>>,
}

impl PyGradScaler {
    fn lock(&self) -> PyResult<MutexGuard<'_, GradScaler>> {
        self.inner
            .lock()
            .map_err(|_| raise(Exc::Torch, "GradScaler unusable after a panic".into()))
    }

    fn scale_obj(&self, py: Python<'_>, ob: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        if let Ok(t) = tensor_arg(ob, "outputs") {
            let s = self.lock()?.scale(&t).py()?;
            return to_py(py, &s);
        }
        if ob.is_instance_of::<PyDict>() || ob.is_instance_of::<pyo3::types::PyString>() {
            return Err(bad_outputs(ob));
        }
        let iter = ob.try_iter().map_err(|_| bad_outputs(ob))?;
        let mut items = Vec::new();
        for item in iter {
            items.push(self.scale_obj(py, &item?)?);
        }
        if ob.is_instance_of::<PyTuple>() {
            return Ok(PyTuple::new(py, items)?.into_any().unbind());
        }
        Ok(PyList::new(py, items)?.into_any().unbind())
    }
}

fn bad_outputs(ob: &Bound<'_, PyAny>) -> PyErr {
    raise(
        Exc::InputType,
        format!(
            "GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, got {}",
            ob.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ),
    )
}

#[pymethods]
impl PyGradScaler {
    #[new]
    #[pyo3(signature = (init_scale = D.init_scale, growth_factor = D.growth_factor,
                        backoff_factor = D.backoff_factor, growth_interval = D.growth_interval,
                        enabled = D.enabled, device = None))]
    fn new(
        py: Python<'_>,
        init_scale: f64,
        growth_factor: f64,
        backoff_factor: f64,
        growth_interval: i64,
        enabled: bool,
        device: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let inner = GradScaler::new(ScalerConfig {
            init_scale,
            growth_factor,
            backoff_factor,
            growth_interval,
            enabled,
            device: device.map(device_arg).transpose()?,
        })
        .py()?;
        if let Some(w) = inner.warning() {
            py.import("warnings")?.call_method1("warn", (w,))?;
        }
        Ok(PyGradScaler {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// `outputs * scale`: a tensor, or a list/tuple (nested) of tensors.
    /// Returned unchanged when disabled.
    fn scale(&self, py: Python<'_>, outputs: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        if !self.lock()?.is_enabled() {
            return Ok(outputs.clone().unbind());
        }
        self.scale_obj(py, outputs)
    }

    /// Unscales the optimizer's gradients in place and records inf/NaN.
    fn unscale_(&self, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.lock()?.is_enabled() {
            return Ok(());
        }
        let params = optimizer_params(optimizer)?;
        let key = optimizer.as_ptr() as usize;
        self.lock()?.unscale_(key, &params).py()
    }

    /// `step(optimizer, *args, **kwargs)` as torch (returns the step's
    /// result, None when skipped), or floDl's `step(params, step_fn) -> bool`.
    #[pyo3(signature = (optimizer, *args, **kwargs))]
    fn step(
        &self,
        py: Python<'_>,
        optimizer: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        if !is_optimizer(optimizer) {
            return self.step_params(py, optimizer, args, kwargs);
        }
        let core = core_of(optimizer);
        let fused = match &core {
            Some(arc) => arc.lock().map_err(|_| poisoned())?.implementation() == Impl::Fused,
            None => false,
        };
        let extra_args = !args.is_empty() || kwargs.is_some_and(|k| !k.is_empty());
        let closure = kwargs.is_some_and(|k| k.contains("closure").unwrap_or(false));
        let path = self.lock()?.step_path(fused, extra_args, closure).py()?;
        let key = optimizer.as_ptr() as usize;
        match (path, core) {
            (StepPath::Fused, Some(arc)) => {
                let mut guard = self.lock()?;
                let scaler: &mut GradScaler = &mut guard;
                py.allow_threads(|| {
                    let mut opt = arc
                        .lock()
                        .map_err(|_| crate::Error::Internal("optimizer poisoned".into()))?;
                    scaler.step_fused(key, &mut *opt)
                })
                .py()?;
                // torch's lr schedulers check that the optimizer stepped (the
                // fused path bypasses the step wrapper they install).
                if !optimizer.is_instance_of::<PyOptimizer>() {
                    optimizer.setattr(pyo3::intern!(py, "_opt_called"), true)?;
                }
                Ok(py.None())
            }
            (StepPath::Checked, _) => {
                let params = optimizer_params(optimizer)?;
                let out = amp::step_checked(&self.inner, key, &params, || {
                    optimizer
                        .call_method("step", args, kwargs)
                        .map(Bound::unbind)
                        .map_err(|e| stash(e, "optimizer.step()"))
                })
                .py()?;
                Ok(out.unwrap_or_else(|| py.None()))
            }
            _ => Ok(optimizer.call_method("step", args, kwargs)?.unbind()),
        }
    }

    /// Backoff/growth of the scale from this iteration's inf checks, or sets
    /// it to `new_scale` (a float or a one-element tensor).
    #[pyo3(signature = (new_scale = None))]
    fn update(&self, new_scale: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut s = self.lock()?;
        match new_scale {
            None => s.update().py(),
            Some(v) => {
                let t = match v.extract::<f64>() {
                    Ok(x) if !v.hasattr("shape")? => Tensor::from(x),
                    _ => {
                        let t = tensor_arg(v, "new_scale")?;
                        if t.requires_grad() {
                            return Err(raise(
                                Exc::Config,
                                "GradScaler.update: new_scale must not require grad".into(),
                            ));
                        }
                        t
                    }
                };
                s.update_to(&t).py()
            }
        }
    }

    /// The current scale (a host sync); 1.0 when disabled.
    fn get_scale(&self) -> PyResult<f64> {
        self.lock()?.get_scale().py()
    }

    fn is_enabled(&self) -> PyResult<bool> {
        Ok(self.lock()?.is_enabled())
    }

    fn get_growth_factor(&self) -> PyResult<f64> {
        Ok(self.lock()?.growth_factor())
    }

    fn get_backoff_factor(&self) -> PyResult<f64> {
        Ok(self.lock()?.backoff_factor())
    }

    fn get_growth_interval(&self) -> PyResult<i64> {
        Ok(self.lock()?.growth_interval())
    }

    /// Whether the last `step` skipped the optimizer for inf/NaN gradients.
    /// Reads one device flag (a host sync); False before any step.
    fn last_step_skipped(&self) -> PyResult<bool> {
        self.lock()?.last_step_skipped().py()
    }

    /// The last step's found-inf flag as a 0-dim tensor on device (nonzero:
    /// skipped), with no sync; None before any step or when disabled.
    fn last_found_inf(&self, py: Python<'_>) -> PyResult<PyObject> {
        match self.lock()?.last_found_inf() {
            Some(t) => to_py(py, &t),
            None => Ok(py.None()),
        }
    }

    /// Consecutive unskipped steps since the last growth/backoff (a sync).
    fn _get_growth_tracker(&self) -> PyResult<i64> {
        self.lock()?.growth_tracker().py()
    }

    /// The scale tensor itself (on device, no sync), or None before the
    /// first `scale()`.
    fn _get_scale_async(&self, py: Python<'_>) -> PyResult<PyObject> {
        match self.lock()?.scale_async() {
            Some(t) => to_py(py, t),
            None => Ok(py.None()),
        }
    }

    /// torch.amp.GradScaler's layout; `{}` when disabled.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if let Some(s) = self.lock()?.state_dict().py()? {
            d.set_item("scale", s.scale)?;
            d.set_item("growth_factor", s.growth_factor)?;
            d.set_item("backoff_factor", s.backoff_factor)?;
            d.set_item("growth_interval", s.growth_interval)?;
            d.set_item("_growth_tracker", s.growth_tracker)?;
        }
        Ok(d)
    }

    fn load_state_dict(&self, state_dict: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut s = self.lock()?;
        if !s.is_enabled() {
            return Ok(());
        }
        if state_dict.is_empty() {
            return Err(raise(
                Exc::Torch,
                "The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler."
                    .into(),
            ));
        }
        let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
            state_dict.get_item(k)?.ok_or_else(|| {
                raise(
                    Exc::Tag,
                    format!("GradScaler.load_state_dict: missing key '{k}'"),
                )
            })
        };
        // Each entry is read and checked before the scaler changes.
        fn field<'py, T: FromPyObject<'py>>(
            v: Bound<'py, PyAny>,
            k: &str,
            rule: &str,
        ) -> PyResult<T> {
            v.extract().map_err(|_| {
                raise(
                    Exc::Config,
                    format!("GradScaler.load_state_dict: '{k}' must be {rule}, got {v}"),
                )
            })
        }
        let st = ScalerState {
            scale: field(get("scale")?, "scale", "a float")?,
            growth_factor: field(get("growth_factor")?, "growth_factor", "a float")?,
            backoff_factor: field(get("backoff_factor")?, "backoff_factor", "a float")?,
            growth_interval: field(
                get("growth_interval")?,
                "growth_interval",
                "a non-negative int",
            )?,
            growth_tracker: field(
                get("_growth_tracker")?,
                "_growth_tracker",
                "a non-negative int",
            )?,
        };
        s.load_state_dict(st).py()
    }

    fn __repr__(&self) -> PyResult<String> {
        let s = self.lock()?;
        Ok(format!(
            "GradScaler(enabled={}, growth_factor={}, backoff_factor={}, growth_interval={})",
            if s.is_enabled() { "True" } else { "False" },
            s.growth_factor(),
            s.backoff_factor(),
            s.growth_interval()
        ))
    }
}

impl PyGradScaler {
    /// floDl's `step(params, step_fn) -> bool`.
    fn step_params(
        &self,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        let step_fn = match (args.len(), kwargs) {
            (1, None) => args.get_item(0)?,
            (0, Some(k)) if k.len() == 1 && k.contains("step_fn")? => {
                k.get_item("step_fn")?.ok_or_else(missing_step_fn)?
            }
            _ => {
                return Err(raise(
                    Exc::InputType,
                    "GradScaler.step: expected step(optimizer) or step(params, step_fn)".into(),
                ))
            }
        };
        if !step_fn.is_callable() {
            return Err(raise(
                Exc::InputType,
                format!(
                    "GradScaler.step: step_fn must be callable, got {}",
                    step_fn.get_type().name()?
                ),
            ));
        }
        let ps = tensor_list(params, "params")?;
        let stepped = amp::step_checked(&self.inner, PARAMS_KEY, &ps, || {
            step_fn.call0().map(drop).map_err(|e| stash(e, "step_fn"))
        })
        .py()?
        .is_some();
        Ok(stepped.into_pyobject(py)?.to_owned().into_any().unbind())
    }
}

/// An autocast region (`with AutocastGuard(torch.bfloat16): ...`): the Rust
/// RAII guard lives from `__enter__` to `__exit__`. Thread-affine, as
/// autocast state is per thread.
#[pyclass(name = "AutocastGuard", module = "ferrotorch._core", unsendable)]
pub struct PyAutocastGuard {
    device: AutocastDevice,
    dtype: Kind,
    enabled: bool,
    active: Vec<amp::AutocastGuard>,
}

impl PyAutocastGuard {
    fn build(dtype: &Bound<'_, PyAny>, device_type: Option<&str>, enabled: bool) -> PyResult<Self> {
        Ok(PyAutocastGuard {
            dtype: amp_kind(dtype, "autocast")?,
            device: device_type_arg(device_type)?,
            enabled,
            active: Vec::new(),
        })
    }
}

#[pymethods]
impl PyAutocastGuard {
    #[new]
    #[pyo3(signature = (dtype, device_type = None, enabled = None),
           text_signature = "(dtype, device_type=None, enabled=True)")]
    fn new(
        dtype: &Bound<'_, PyAny>,
        device_type: Option<&Bound<'_, PyAny>>,
        enabled: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        const W: &str = "AutocastGuard()";
        let device_type: Option<String> = match device_type.filter(|d| !d.is_none()) {
            Some(d) => Some(extract(d, W, "device_type", "a str")?),
            None => None,
        };
        let enabled = enabled.map_or(Ok(true), |e| extract(e, W, "enabled", "a bool"))?;
        Self::build(dtype, device_type.as_deref(), enabled)
    }

    fn __enter__(slf: PyRefMut<'_, Self>) -> PyResult<PyRefMut<'_, Self>> {
        let mut slf = slf;
        let g = amp::AutocastGuard::new(slf.device, slf.dtype, slf.enabled).py()?;
        slf.active.push(g);
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.active.pop();
        false
    }

    #[getter]
    fn device_type(&self) -> &'static str {
        self.device.name()
    }

    fn __repr__(&self) -> String {
        format!(
            "AutocastGuard(dtype={}, device_type='{}', enabled={})",
            crate::tensor::kind_str(self.dtype),
            self.device.name(),
            if self.enabled { "True" } else { "False" }
        )
    }
}

/// `autocast(dtype)` -> a context manager; `autocast(dtype, fn)` -> fn()
/// run under autocast.
#[pyfunction]
#[pyo3(signature = (dtype, r#fn = None, device_type = None, enabled = true))]
fn autocast(
    py: Python<'_>,
    dtype: &Bound<'_, PyAny>,
    r#fn: Option<&Bound<'_, PyAny>>,
    device_type: Option<&str>,
    enabled: bool,
) -> PyResult<PyObject> {
    let guard = PyAutocastGuard::build(dtype, device_type, enabled)?;
    match r#fn {
        None => Ok(Bound::new(py, guard)?.into_any().unbind()),
        Some(f) => {
            if !f.is_callable() {
                return Err(raise(
                    Exc::InputType,
                    format!(
                        "autocast: fn must be callable, got {}",
                        f.get_type().name()?
                    ),
                ));
            }
            let _g = amp::AutocastGuard::new(guard.device, guard.dtype, enabled).py()?;
            Ok(f.call0()?.unbind())
        }
    }
}

/// Whether autocast is on in this thread for `device_type` (default: cuda
/// when available, else cpu).
#[pyfunction]
#[pyo3(signature = (device_type = None))]
fn is_autocast_enabled(device_type: Option<&str>) -> PyResult<bool> {
    amp::is_autocast_enabled(device_type_arg(device_type)?).py()
}

/// Casts parameters to `dtype` in place, keeping each tensor's identity.
#[pyfunction]
fn cast_parameters(params: &Bound<'_, PyAny>, dtype: &Bound<'_, PyAny>) -> PyResult<()> {
    let ps = tensor_list(params, "params")?;
    let k = kind_arg(dtype, "cast_parameters: dtype")?;
    amp::cast_parameters(&ps, k).py()
}

/// The GradScaler's constructor defaults, from the core's one table
/// (`ferrotorch.GradScaler`'s signature is built from it).
#[pyfunction]
fn grad_scaler_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("init_scale", D.init_scale)?;
    d.set_item("growth_factor", D.growth_factor)?;
    d.set_item("backoff_factor", D.backoff_factor)?;
    d.set_item("growth_interval", D.growth_interval)?;
    d.set_item("enabled", D.enabled)?;
    d.set_item("device", py.None())?;
    Ok(d)
}

/// Whether training in the amp `dtype` needs a GradScaler (float16); raises
/// ConfigError for a dtype autocast cannot run in.
#[pyfunction]
#[pyo3(signature = (dtype, what = "amp"))]
fn amp_needs_scaler(dtype: &Bound<'_, PyAny>, what: &str) -> PyResult<bool> {
    Ok(amp::needs_scaler(amp_kind(dtype, what)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGradScaler>()?;
    m.add_class::<PyAutocastGuard>()?;
    m.add_function(wrap_pyfunction!(autocast, m)?)?;
    m.add_function(wrap_pyfunction!(is_autocast_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(cast_parameters, m)?)?;
    m.add_function(wrap_pyfunction!(grad_scaler_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(amp_needs_scaler, m)?)?;
    Ok(())
}
