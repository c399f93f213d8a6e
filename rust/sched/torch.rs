//! Stateful schedulers equal to `torch.optim.lr_scheduler` value by value.
//!
//! torch's `step()` mostly uses chainable recurrences that read the
//! optimizer's current lrs (`get_lr`), not the closed forms, and the two
//! differ by float rounding; so does every `step` here, following torch's
//! arithmetic operation by operation. The caller passes the current lr of
//! each param group and writes back what comes out.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use super::cycle::{cyclic_lr, one_cycle_lr, Cyclic, OneCycle};
use super::state::{Loader, State, Val};
use super::{check_at_least, check_finite, check_lr, pow, ArcSchedule};
use crate::{Error, Result};

/// What one step produces: an lr per group, and for the cycling schedulers
/// (with `cycle_momentum`) a momentum (or beta1) per group.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    pub lrs: Vec<f64>,
    pub momentum: Option<Vec<f64>>,
}

impl StepOutput {
    fn lrs(lrs: Vec<f64>) -> Self {
        Self {
            lrs,
            momentum: None,
        }
    }
}

/// The operations SequentialLR needs from its children, and the bindings
/// from every torch-style scheduler.
pub trait LrSchedulerCore: Send {
    fn name(&self) -> &'static str;
    /// torch's `step()`; `epoch` is the deprecated explicit epoch (closed
    /// form where torch has one).
    fn step(&mut self, current: &[f64], epoch: Option<f64>) -> Result<StepOutput>;
    /// torch's `_initial_step()`: the step run at construction.
    fn initial_step(&mut self, current: &[f64]) -> Result<StepOutput>;
    /// torch's `_update_lr(epoch)` (used by SequentialLR at a milestone).
    fn update_lr_at(&mut self, current: &[f64], epoch: i64) -> Result<StepOutput>;
    /// SequentialLR's `recursive_undo`: `last_epoch -= 1`.
    fn undo(&mut self);
    fn last_lr(&self) -> Vec<f64>;
    fn last_epoch(&self) -> i64;
    fn state(&self) -> State;
    fn load_state(&mut self, state: &State) -> Result<()>;
}

/// A per-group hyperparameter given as one value or one per group (torch's
/// `_format_param`).
#[derive(Debug, Clone)]
pub enum PerGroup<T = f64> {
    One(T),
    Each(Vec<T>),
}

impl<T: Clone> PerGroup<T> {
    pub fn expand(self, who: &str, name: &str, groups: usize) -> Result<Vec<T>> {
        match self {
            PerGroup::One(v) => Ok(vec![v; groups]),
            PerGroup::Each(v) if v.len() == groups => Ok(v),
            PerGroup::Each(v) => Err(Error::Value(format!(
                "{who}: {name} must have the same length as optimizer.param_groups: \
                 {name} has {} values, param_groups has {groups}",
                v.len()
            ))),
        }
    }
}

/// CyclicLR's scaling policy.
#[derive(Clone)]
pub enum Kind {
    Lambda(Vec<ArcSchedule>),
    Step {
        step_size: i64,
        gamma: f64,
    },
    /// milestone -> count (torch keeps a Counter).
    MultiStep {
        milestones: BTreeMap<i64, i64>,
        gamma: f64,
    },
    Linear {
        start: f64,
        end: f64,
        total: i64,
    },
    Exponential {
        gamma: f64,
    },
    Polynomial {
        total: i64,
        power: f64,
    },
    CosineAnnealing {
        t_max: i64,
        eta_min: f64,
    },
    WarmRestarts {
        t_0: i64,
        t_i: i64,
        t_mult: i64,
        eta_min: f64,
        t_cur: f64,
    },
    Cyclic(Box<Cyclic>),
    OneCycle(Box<OneCycle>),
}

/// One torch-style scheduler: torch's base-class state plus its kind.
#[derive(Clone)]
pub struct LrScheduler {
    pub last_epoch: i64,
    pub base_lrs: Vec<f64>,
    pub step_count: i64,
    pub last_lr: Vec<f64>,
    is_initial: bool,
    pub kind: Kind,
}

impl LrScheduler {
    pub(super) fn with(kind: Kind) -> Self {
        Self {
            last_epoch: -1,
            base_lrs: Vec::new(),
            step_count: 0,
            last_lr: Vec::new(),
            is_initial: false,
            kind,
        }
    }

    pub fn lambda(lambdas: Vec<ArcSchedule>) -> Result<Self> {
        if lambdas.is_empty() {
            return Err(Error::Value("LambdaLR: lr_lambda must not be empty".into()));
        }
        Ok(Self::with(Kind::Lambda(lambdas)))
    }

    pub fn step_lr(step_size: i64, gamma: f64) -> Result<Self> {
        check_at_least("StepLR", "step_size", step_size, 1)?;
        check_finite("StepLR", "gamma", gamma)?;
        Ok(Self::with(Kind::Step { step_size, gamma }))
    }

    pub fn multi_step(milestones: &[i64], gamma: f64) -> Result<Self> {
        check_finite("MultiStepLR", "gamma", gamma)?;
        let mut counts = BTreeMap::new();
        for &m in milestones {
            *counts.entry(m).or_insert(0) += 1;
        }
        Ok(Self::with(Kind::MultiStep {
            milestones: counts,
            gamma,
        }))
    }

    pub fn linear(start: f64, end: f64, total: i64) -> Result<Self> {
        if !(start > 0.0 && start <= 1.0) {
            return Err(Error::Value(format!(
                "LinearLR: start_factor must be in (0, 1], got {start}"
            )));
        }
        if !(0.0..=1.0).contains(&end) {
            return Err(Error::Value(format!(
                "LinearLR: end_factor must be in [0, 1], got {end}"
            )));
        }
        check_at_least("LinearLR", "total_iters", total, 1)?;
        Ok(Self::with(Kind::Linear { start, end, total }))
    }

    pub fn exponential(gamma: f64) -> Result<Self> {
        check_finite("ExponentialLR", "gamma", gamma)?;
        Ok(Self::with(Kind::Exponential { gamma }))
    }

    pub fn polynomial(total: i64, power: f64) -> Result<Self> {
        check_at_least("PolynomialLR", "total_iters", total, 1)?;
        check_finite("PolynomialLR", "power", power)?;
        Ok(Self::with(Kind::Polynomial { total, power }))
    }

    pub fn cosine_annealing(t_max: i64, eta_min: f64) -> Result<Self> {
        check_at_least("CosineAnnealingLR", "T_max", t_max, 1)?;
        check_lr("CosineAnnealingLR", "eta_min", eta_min)?;
        Ok(Self::with(Kind::CosineAnnealing { t_max, eta_min }))
    }

    pub fn warm_restarts(t_0: i64, t_mult: i64, eta_min: f64) -> Result<Self> {
        let who = "CosineAnnealingWarmRestarts";
        check_at_least(who, "T_0", t_0, 1)?;
        check_at_least(who, "T_mult", t_mult, 1)?;
        check_lr(who, "eta_min", eta_min)?;
        Ok(Self::with(Kind::WarmRestarts {
            t_0,
            t_i: t_0,
            t_mult,
            eta_min,
            t_cur: -1.0,
        }))
    }

    /// Param-group entries torch writes at construction (before the base
    /// class reads `initial_lr`): `(key, value per group)`; the key "lr"
    /// means the lr itself.
    pub fn group_overrides(&self) -> Vec<(&'static str, Vec<f64>)> {
        let mut out = Vec::new();
        match &self.kind {
            Kind::Cyclic(c) => {
                out.push(("lr", self.base_lrs.clone()));
                if let Some((base, max)) = &c.momentums {
                    out.push(("max_momentum", max.clone()));
                    out.push(("base_momentum", base.clone()));
                }
            }
            Kind::OneCycle(o) => {
                out.push(("initial_lr", o.lrs.iter().map(|l| l[0]).collect()));
                out.push(("max_lr", o.lrs.iter().map(|l| l[1]).collect()));
                out.push(("min_lr", o.lrs.iter().map(|l| l[2]).collect()));
                if let Some(m) = &o.momentums {
                    out.push(("max_momentum", m.iter().map(|m| m[0]).collect()));
                    out.push(("base_momentum", m.iter().map(|m| m[1]).collect()));
                }
            }
            _ => {}
        }
        out
    }

    /// The momentum torch sets at construction (max_momentum), if cycled.
    pub fn initial_momentum(&self) -> Option<Vec<f64>> {
        match &self.kind {
            Kind::Cyclic(c) => c.momentums.as_ref().map(|(_, max)| max.clone()),
            Kind::OneCycle(o) => o
                .momentums
                .as_ref()
                .map(|m| m.iter().map(|m| m[0]).collect()),
            _ => None,
        }
    }

    /// Sets `base_lrs` from the groups' `initial_lr` (torch's base class);
    /// CyclicLR keeps its own.
    pub fn set_initial_lrs(&mut self, initial: &[f64]) -> Result<()> {
        let groups = match &self.kind {
            Kind::Lambda(l) => Some(l.len()),
            Kind::Cyclic(c) => Some(c.max_lrs.len()),
            Kind::OneCycle(o) => Some(o.lrs.len()),
            _ => None,
        };
        if let Some(n) = groups {
            if n != initial.len() {
                return Err(Error::Value(format!(
                    "{}: configured for {n} param groups, the optimizer has {}",
                    self.name(),
                    initial.len()
                )));
            }
        }
        if !matches!(self.kind, Kind::Cyclic(_)) {
            self.base_lrs = initial.to_vec();
        }
        Ok(())
    }

    fn check_groups(&self, current: &[f64]) -> Result<()> {
        if current.len() != self.base_lrs.len() {
            return Err(Error::Value(format!(
                "{}: the optimizer has {} param groups, the scheduler was built for {}",
                self.name(),
                current.len(),
                self.base_lrs.len()
            )));
        }
        Ok(())
    }

    /// torch's chainable `get_lr()` at `self.last_epoch`.
    fn get_lr(&mut self, current: &[f64]) -> Result<StepOutput> {
        self.check_groups(current)?;
        let le = self.last_epoch;
        let initial = self.is_initial;
        let map = |f: &dyn Fn(f64) -> f64| current.iter().map(|&l| f(l)).collect::<Vec<_>>();
        let lrs = match &self.kind {
            Kind::Lambda(fs) => {
                let step = usize::try_from(le).map_err(|_| {
                    Error::Value(format!("LambdaLR: last_epoch must be >= 0, got {le}"))
                })?;
                let mut out = Vec::with_capacity(fs.len());
                for (f, b) in fs.iter().zip(&self.base_lrs) {
                    out.push(b * f.try_lr(step)?);
                }
                out
            }
            Kind::Step { step_size, gamma } => {
                if le == 0 || le.rem_euclid(*step_size) != 0 {
                    current.to_vec()
                } else {
                    map(&|l| l * gamma)
                }
            }
            Kind::MultiStep { milestones, gamma } => match milestones.get(&le) {
                None => current.to_vec(),
                Some(&n) => map(&|l| l * pow(*gamma, n as f64)),
            },
            Kind::Linear { start, end, total } => {
                if le == 0 {
                    map(&|l| l * start)
                } else if initial || le > *total {
                    current.to_vec()
                } else {
                    let f = 1.0
                        + (end - start) / (*total as f64 * start + (le - 1) as f64 * (end - start));
                    map(&|l| l * f)
                }
            }
            Kind::Exponential { gamma } => {
                if initial {
                    current.to_vec()
                } else {
                    map(&|l| l * gamma)
                }
            }
            Kind::Polynomial { total, power } => {
                if initial || le > *total {
                    current.to_vec()
                } else {
                    let t = *total as f64;
                    let decay = pow((1.0 - le as f64 / t) / (1.0 - (le - 1) as f64 / t), *power);
                    map(&|l| l * decay)
                }
            }
            Kind::CosineAnnealing { t_max, eta_min } => {
                let (t, eta) = (*t_max as f64, *eta_min);
                if initial {
                    current.to_vec()
                } else if self.step_count == 1 && le > 0 {
                    self.base_lrs
                        .iter()
                        .map(|b| eta + (b - eta) * (1.0 + (le as f64 * PI / t).cos()) / 2.0)
                        .collect()
                } else if (le - 1 - t_max).rem_euclid(2 * t_max) == 0 {
                    current
                        .iter()
                        .zip(&self.base_lrs)
                        .map(|(l, b)| l + (b - eta) * (1.0 - (PI / t).cos()) / 2.0)
                        .collect()
                } else {
                    let f = (1.0 + (PI * le as f64 / t).cos())
                        / (1.0 + (PI * (le - 1) as f64 / t).cos());
                    map(&|l| f * (l - eta) + eta)
                }
            }
            Kind::WarmRestarts {
                t_i,
                eta_min,
                t_cur,
                ..
            } => {
                let eta = *eta_min;
                let c = (PI * t_cur / *t_i as f64).cos();
                self.base_lrs
                    .iter()
                    .map(|b| eta + (b - eta) * (1.0 + c) / 2.0)
                    .collect()
            }
            Kind::Cyclic(c) => return cyclic_lr(c, &self.base_lrs, le),
            Kind::OneCycle(o) => return one_cycle_lr(o, le),
        };
        Ok(StepOutput::lrs(lrs))
    }

    /// torch's `_get_closed_form_lr`, for the kinds that have one.
    fn closed_form(&self) -> Option<Vec<f64>> {
        let le = self.last_epoch;
        let b = &self.base_lrs;
        let lrs = match &self.kind {
            Kind::Step { step_size, gamma } => b
                .iter()
                .map(|b| b * pow(*gamma, le.div_euclid(*step_size) as f64))
                .collect(),
            Kind::MultiStep { milestones, gamma } => {
                let passed: i64 = milestones.range(..=le).map(|(_, n)| n).sum();
                b.iter().map(|b| b * pow(*gamma, passed as f64)).collect()
            }
            Kind::Linear { start, end, total } => b
                .iter()
                .map(|b| b * (start + (end - start) * (*total).min(le) as f64 / *total as f64))
                .collect(),
            Kind::Exponential { gamma } => b.iter().map(|b| b * pow(*gamma, le as f64)).collect(),
            Kind::Polynomial { total, power } => b
                .iter()
                .map(|b| b * pow(1.0 - (*total).min(le) as f64 / *total as f64, *power))
                .collect(),
            Kind::CosineAnnealing { t_max, eta_min } => b
                .iter()
                .map(|b| {
                    eta_min + (b - eta_min) * (1.0 + (PI * le as f64 / *t_max as f64).cos()) / 2.0
                })
                .collect(),
            _ => return None,
        };
        Some(lrs)
    }

    /// torch's `_update_lr(epoch)`.
    fn update_lr(&mut self, current: &[f64], epoch: Option<i64>) -> Result<StepOutput> {
        let out = match epoch {
            None => {
                self.last_epoch += 1;
                self.get_lr(current)?
            }
            Some(e) => {
                self.last_epoch = e;
                match self.closed_form() {
                    Some(l) => {
                        self.check_groups(current)?;
                        StepOutput::lrs(l)
                    }
                    None => self.get_lr(current)?,
                }
            }
        };
        self.last_lr = out.lrs.clone();
        Ok(out)
    }

    /// CosineAnnealingWarmRestarts overrides torch's `step`.
    fn warm_restarts_step(&mut self, current: &[f64], epoch: Option<f64>) -> Result<StepOutput> {
        let last_epoch = self.last_epoch;
        let Kind::WarmRestarts {
            t_0,
            t_i,
            t_mult,
            t_cur,
            ..
        } = &mut self.kind
        else {
            return Err(Error::Value("not CosineAnnealingWarmRestarts".into()));
        };
        let epoch = match epoch {
            None if last_epoch < 0 => Some(0.0),
            e => e,
        };
        let epoch = match epoch {
            None => {
                *t_cur += 1.0;
                if *t_cur >= *t_i as f64 {
                    *t_cur %= *t_i as f64;
                    *t_i *= *t_mult;
                }
                (last_epoch + 1) as f64
            }
            Some(e) => {
                if !(e >= 0.0 && e.is_finite()) {
                    return Err(Error::Value(format!(
                        "CosineAnnealingWarmRestarts: epoch must be a finite number >= 0, got {e}"
                    )));
                }
                if e >= *t_0 as f64 {
                    if *t_mult == 1 {
                        *t_cur = e % *t_0 as f64;
                    } else {
                        let m = *t_mult as f64;
                        let x = e / *t_0 as f64 * (m - 1.0) + 1.0;
                        let n = (x.ln() / m.ln()) as u32;
                        let tm_n = t_mult.checked_pow(n).ok_or_else(|| {
                            Error::Value("CosineAnnealingWarmRestarts: epoch too large".into())
                        })?;
                        *t_cur = e - (*t_0 * (tm_n - 1)) as f64 / (*t_mult - 1) as f64;
                        *t_i = *t_0 * tm_n;
                    }
                } else {
                    *t_i = *t_0;
                    *t_cur = e;
                }
                e
            }
        };
        self.last_epoch = epoch.floor() as i64;
        let out = self.get_lr(current)?;
        self.last_lr = out.lrs.clone();
        Ok(out)
    }
}

impl LrSchedulerCore for LrScheduler {
    fn name(&self) -> &'static str {
        match &self.kind {
            Kind::Lambda(_) => "LambdaLR",
            Kind::Step { .. } => "StepLR",
            Kind::MultiStep { .. } => "MultiStepLR",
            Kind::Linear { .. } => "LinearLR",
            Kind::Exponential { .. } => "ExponentialLR",
            Kind::Polynomial { .. } => "PolynomialLR",
            Kind::CosineAnnealing { .. } => "CosineAnnealingLR",
            Kind::WarmRestarts { .. } => "CosineAnnealingWarmRestarts",
            Kind::Cyclic(_) => "CyclicLR",
            Kind::OneCycle(_) => "OneCycleLR",
        }
    }

    fn step(&mut self, current: &[f64], epoch: Option<f64>) -> Result<StepOutput> {
        if matches!(self.kind, Kind::WarmRestarts { .. }) {
            return self.warm_restarts_step(current, epoch);
        }
        let epoch = match epoch {
            None => None,
            Some(e) if e.fract() == 0.0 && e.is_finite() => Some(e as i64),
            Some(e) => {
                return Err(Error::Value(format!(
                    "{}: epoch must be a whole number, got {e}",
                    self.name()
                )))
            }
        };
        self.step_count += 1;
        self.update_lr(current, epoch)
    }

    fn initial_step(&mut self, current: &[f64]) -> Result<StepOutput> {
        self.step_count = 0;
        self.is_initial = true;
        let out = self.step(current, None);
        self.is_initial = false;
        out
    }

    fn update_lr_at(&mut self, current: &[f64], epoch: i64) -> Result<StepOutput> {
        self.update_lr(current, Some(epoch))
    }

    fn undo(&mut self) {
        self.last_epoch -= 1;
    }

    fn last_lr(&self) -> Vec<f64> {
        self.last_lr.clone()
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    fn state(&self) -> State {
        let mut s = self.kind_state();
        s.extend([
            ("base_lrs".into(), Val::Floats(self.base_lrs.clone())),
            ("last_epoch".into(), Val::Int(self.last_epoch)),
            ("_step_count".into(), Val::Int(self.step_count)),
            ("_is_initial".into(), Val::Bool(false)),
            ("_get_lr_called_within_step".into(), Val::Bool(false)),
            ("_last_lr".into(), Val::Floats(self.last_lr.clone())),
        ]);
        s
    }

    fn load_state(&mut self, state: &State) -> Result<()> {
        let l = Loader::new(self.name(), state);
        // Load into a copy so a bad dict leaves the scheduler untouched.
        let mut next = self.clone();
        next.load_kind(&l)?;
        next.base_lrs = l.f64s("base_lrs")?;
        next.last_epoch = l.i64("last_epoch")?;
        if l.has("_step_count") {
            next.step_count = l.i64("_step_count")?;
        }
        next.last_lr = l.f64s_or("_last_lr", &self.last_lr)?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut s: LrScheduler, lr0: &[f64], n: usize) -> Vec<Vec<f64>> {
        s.set_initial_lrs(lr0).unwrap();
        let mut cur = s.initial_step(lr0).unwrap().lrs;
        let mut out = vec![cur.clone()];
        for _ in 0..n {
            cur = s.step(&cur, None).unwrap().lrs;
            out.push(cur.clone());
        }
        out
    }

    #[test]
    fn step_lr_chain() {
        let got = run(LrScheduler::step_lr(2, 0.5).unwrap(), &[1.0, 2.0], 4);
        let want = [[1.0, 2.0], [1.0, 2.0], [0.5, 1.0], [0.5, 1.0], [0.25, 0.5]];
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.as_slice(), w.as_slice());
        }
        assert!(LrScheduler::step_lr(0, 0.5).is_err());
    }

    #[test]
    fn cosine_reaches_eta_min() {
        let got = run(LrScheduler::cosine_annealing(10, 0.0).unwrap(), &[1.0], 20);
        assert!(got[10][0].abs() < 1e-12);
        assert!((got[20][0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn warm_restarts_period() {
        let got = run(LrScheduler::warm_restarts(3, 2, 0.0).unwrap(), &[1.0], 10);
        assert_eq!(got[0][0], 1.0);
        assert_eq!(got[3][0], 1.0); // restart after T_0 = 3
        assert_eq!(got[9][0], 1.0); // then after T_1 = 6
    }

    #[test]
    fn one_cycle_ends_at_min() {
        let s = LrScheduler::one_cycle(vec![1.0], 10, 0.3, "cos", 25.0, 1e4, false, None).unwrap();
        let mut s2 = s.clone();
        s2.set_initial_lrs(&[0.04]).unwrap();
        let got = run(s, &[0.04], 9);
        assert!((got[0][0] - 0.04).abs() < 1e-15);
        assert!((got[9][0] - 0.04 / 1e4).abs() < 1e-15);
        let mut cur = s2.initial_step(&[0.04]).unwrap().lrs;
        for _ in 0..10 {
            cur = s2.step(&cur, None).unwrap().lrs;
        }
        assert!(s2.step(&cur, None).is_err()); // past total_steps
    }

    #[test]
    fn state_round_trip() {
        let mut a = LrScheduler::multi_step(&[3, 5, 5], 0.1).unwrap();
        a.set_initial_lrs(&[1.0]).unwrap();
        let mut cur = a.initial_step(&[1.0]).unwrap().lrs;
        for _ in 0..4 {
            cur = a.step(&cur, None).unwrap().lrs;
        }
        let mut b = LrScheduler::multi_step(&[], 0.5).unwrap();
        b.load_state(&a.state()).unwrap();
        let (x, y) = (a.step(&cur, None).unwrap(), b.step(&cur, None).unwrap());
        assert_eq!(x, y);
        assert!((x.lrs[0] - 1e-3).abs() < 1e-15);
    }
}
