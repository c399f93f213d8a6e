//! torch-style schedulers bound to an optimizer (`crate::sched::bound`):
//! argument conversion, and state dicts through `super::state`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::groups::PyGroups;
use super::schedule::schedule_arg;
use super::state::{dict_to_state, state_to_py};
use crate::python::errors::{raise, Exc, IntoPyResult};
use crate::sched::bound::BoundScheduler;
use crate::sched::groups::{
    check_last_epoch, cycled_momentum, momentum_range, one_cycle_total, scale_by_cycle, Groups,
};
use crate::sched::torch::{LrScheduler, PerGroup};

/// Base class of the torch-style schedulers bound to an optimizer.
#[pyclass(name = "LRScheduler", module = "ferrotorch._core", subclass, frozen)]
pub struct PyLRScheduler {
    core: BoundScheduler,
    opt: PyGroups,
    /// LambdaLR's callables (for state_dict's `lr_lambdas`).
    lambdas: Vec<Py<PyAny>>,
}

impl PyLRScheduler {
    fn attach(
        opt: PyGroups,
        core: LrScheduler,
        momentum: Option<crate::sched::groups::Momentum>,
        lambdas: Vec<Py<PyAny>>,
    ) -> PyResult<Self> {
        let core = BoundScheduler::attach(&opt, core, momentum).py()?;
        Ok(Self { core, opt, lambdas })
    }
}

/// One number or one per group.
pub(super) fn per_group(ob: &Bound<'_, PyAny>, who: &str, name: &str) -> PyResult<PerGroup> {
    if let Ok(v) = ob.extract::<f64>() {
        Ok(PerGroup::One(v))
    } else if let Ok(v) = ob.extract::<Vec<f64>>() {
        Ok(PerGroup::Each(v))
    } else {
        Err(raise(
            Exc::InputType,
            format!("{who}: {name} must be a number or a list of numbers"),
        ))
    }
}

fn opt_per_group(
    ob: Option<&Bound<'_, PyAny>>,
    who: &str,
    name: &str,
) -> PyResult<Option<PerGroup>> {
    ob.map(|o| per_group(o, who, name)).transpose()
}

#[pymethods]
impl PyLRScheduler {
    /// Advances one step and sets the optimizer's lrs. `epoch` (deprecated
    /// in torch) jumps to that epoch using the closed form where torch has one.
    #[pyo3(signature = (epoch = None))]
    fn step(&self, epoch: Option<f64>) -> PyResult<()> {
        self.core.step(&self.opt, epoch).py()
    }

    /// The lrs set by the last step, one per param group.
    fn get_last_lr(&self) -> PyResult<Vec<f64>> {
        self.core.last_lr().py()
    }

    /// The index of the last step (0 right after construction).
    #[getter]
    fn last_epoch(&self) -> PyResult<i64> {
        self.core.last_epoch().py()
    }

    /// The lrs the schedule starts from, one per param group.
    #[getter]
    fn base_lrs(&self) -> PyResult<Vec<f64>> {
        self.core.base_lrs().py()
    }

    /// The optimizer this scheduler drives.
    #[getter]
    fn optimizer(&self, py: Python<'_>) -> Py<PyAny> {
        self.opt.obj.clone_ref(py)
    }

    /// The scheduler's state, with torch's key names.
    fn state_dict(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let d = state_to_py(py, &self.core.state().py()?)?;
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
        self.core.load_state(&dict_to_state(state_dict)?).py()?;
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
    optimizer: &Bound<'_, PyAny>,
    who: &str,
    last_epoch: i64,
    make: impl FnOnce() -> crate::Result<LrScheduler>,
    sub: T,
) -> Init<T> {
    check_last_epoch(who, last_epoch).py()?;
    let opt = PyGroups::bind(optimizer, who)?;
    let core = make().py()?;
    let base = PyLRScheduler::attach(opt, core, None, Vec::new())?;
    Ok(PyClassInitializer::from(base).add_subclass(sub))
}

#[pymethods]
impl PyStepLR {
    #[new]
    #[pyo3(signature = (optimizer, step_size, gamma = 0.1, last_epoch = -1))]
    fn new(
        optimizer: &Bound<'_, PyAny>,
        step_size: i64,
        gamma: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
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
        optimizer: &Bound<'_, PyAny>,
        milestones: Vec<i64>,
        gamma: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
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
    fn new(optimizer: &Bound<'_, PyAny>, gamma: f64, last_epoch: i64) -> Init<Self> {
        simple(
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
        optimizer: &Bound<'_, PyAny>,
        start_factor: f64,
        end_factor: f64,
        total_iters: i64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
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
        optimizer: &Bound<'_, PyAny>,
        total_iters: i64,
        power: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
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
    fn new(optimizer: &Bound<'_, PyAny>, T_max: i64, eta_min: f64, last_epoch: i64) -> Init<Self> {
        simple(
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
        optimizer: &Bound<'_, PyAny>,
        T_0: i64,
        T_mult: i64,
        eta_min: f64,
        last_epoch: i64,
    ) -> Init<Self> {
        simple(
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
        optimizer: &Bound<'_, PyAny>,
        lr_lambda: &Bound<'_, PyAny>,
        last_epoch: i64,
    ) -> Init<Self> {
        let who = "LambdaLR";
        check_last_epoch(who, last_epoch).py()?;
        let opt = PyGroups::bind(optimizer, who)?;
        let fns: PerGroup<Bound<'_, PyAny>> =
            if lr_lambda.is_instance_of::<PyList>() || lr_lambda.is_instance_of::<PyTuple>() {
                PerGroup::Each(lr_lambda.try_iter()?.collect::<PyResult<Vec<_>>>()?)
            } else {
                PerGroup::One(lr_lambda.clone())
            };
        let fns = fns.expand(who, "lr_lambdas", opt.count().py()?).py()?;
        let mut scheds = Vec::new();
        for (i, f) in fns.iter().enumerate() {
            scheds.push(schedule_arg(f, &format!("{who}: lr_lambda[{i}]"))?);
        }
        let core = LrScheduler::lambda(scheds).py()?;
        let keep = fns.into_iter().map(|f| f.unbind()).collect();
        let base = PyLRScheduler::attach(opt, core, None, keep)?;
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
        check_last_epoch(who, last_epoch).py()?;
        let opt = PyGroups::bind(optimizer, who)?;
        let n = opt.count().py()?;
        let base = per_group(base_lr, who, "base_lr")?
            .expand(who, "base_lr", n)
            .py()?;
        let max = per_group(max_lr, who, "max_lr")?
            .expand(who, "max_lr", n)
            .py()?;
        let scale = match scale_fn {
            None => None,
            Some(f) => Some((
                schedule_arg(f, "CyclicLR scale_fn")?,
                scale_by_cycle(who, scale_mode).py()?,
            )),
        };
        let cycled = cycled_momentum(who, &opt, cycle_momentum).py()?;
        let momentum = momentum_range(
            who,
            n,
            cycled,
            opt_per_group(base_momentum, who, "base_momentum")?,
            opt_per_group(max_momentum, who, "max_momentum")?,
            (0.8, 0.9),
        )
        .py()?;
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
        let b = PyLRScheduler::attach(opt, core, cycled, Vec::new())?;
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
        check_last_epoch(who, last_epoch).py()?;
        let opt = PyGroups::bind(optimizer, who)?;
        let n = opt.count().py()?;
        let total = one_cycle_total(who, total_steps, epochs, steps_per_epoch).py()?;
        let max = per_group(max_lr, who, "max_lr")?
            .expand(who, "max_lr", n)
            .py()?;
        let cycled = cycled_momentum(who, &opt, cycle_momentum).py()?;
        let momentum = momentum_range(
            who,
            n,
            cycled,
            opt_per_group(base_momentum, who, "base_momentum")?,
            opt_per_group(max_momentum, who, "max_momentum")?,
            (0.85, 0.95),
        )
        .py()?;
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
        let base = PyLRScheduler::attach(opt, core, cycled, Vec::new())?;
        Ok(PyClassInitializer::from(base).add_subclass(Self))
    }
}

#[pymethods]
impl PySequentialLR {
    #[new]
    #[pyo3(signature = (optimizer, schedulers, milestones, last_epoch = -1))]
    fn new(
        optimizer: &Bound<'_, PyAny>,
        schedulers: &Bound<'_, PyAny>,
        milestones: Vec<i64>,
        last_epoch: i64,
    ) -> Init<Self> {
        let who = "SequentialLR";
        check_last_epoch(who, last_epoch).py()?;
        let opt = PyGroups::bind(optimizer, who)?;
        let mut held: Vec<Bound<'_, PyLRScheduler>> = Vec::new();
        for (i, s) in schedulers.try_iter()?.enumerate() {
            let s = s?;
            let sched = s.downcast::<PyLRScheduler>().map_err(|_| {
                raise(
                    Exc::InputType,
                    format!("{who}: schedulers[{i}] must be a ferrotorch torch-style scheduler (not ReduceLROnPlateau)"),
                )
            })?;
            if !sched.get().opt.obj.bind(optimizer.py()).is(optimizer) {
                return Err(raise(
                    Exc::Config,
                    format!("{who}: schedulers[{i}] belongs to a different optimizer"),
                ));
            }
            held.push(sched.clone());
        }
        let children: Vec<&BoundScheduler> = held.iter().map(|s| &s.get().core).collect();
        let core = BoundScheduler::sequential(&opt, &children, milestones).py()?;
        let base = PyLRScheduler {
            core,
            opt,
            lambdas: Vec::new(),
        };
        Ok(PyClassInitializer::from(base).add_subclass(Self))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
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
    Ok(())
}
