//! A torch-style scheduler bound to its optimizer's param groups: torch's
//! base-class protocol around the pure recurrences of [`super::torch`] and
//! [`super::sequential`]. Each call reads the current lrs from the groups,
//! steps the core and writes the lrs (and a cycled momentum) back.

use std::sync::{Arc, Mutex, MutexGuard};

use super::groups::{Groups, Momentum};
use super::sequential::{SequentialLR, SharedScheduler};
use super::state::State;
use super::torch::{LrScheduler, LrSchedulerCore, StepOutput};
use crate::{Error, Result};

enum Core {
    One(Arc<Mutex<LrScheduler>>),
    /// SequentialLR, with the momentum each child cycles.
    Seq(Mutex<SequentialLR>, Vec<Option<Momentum>>),
}

pub struct BoundScheduler {
    core: Core,
    momentum: Option<Momentum>,
}

fn poisoned() -> Error {
    Error::Internal("scheduler is poisoned".into())
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| poisoned())
}

/// Writes one step's lrs and, when cycled, its momenta.
fn apply(groups: &dyn Groups, out: &StepOutput, momentum: Option<Momentum>) -> Result<()> {
    groups.set_lrs(&out.lrs)?;
    if let (Some(ms), Some(kind)) = (&out.momentum, momentum) {
        for (i, &m) in ms.iter().enumerate() {
            groups.set_momentum(i, kind, m)?;
        }
    }
    Ok(())
}

/// The groups' `initial_lr`, which SequentialLR resets the lrs to.
fn initial_lrs(groups: &dyn Groups, who: &str) -> Result<Vec<f64>> {
    (0..groups.count()?)
        .map(|i| {
            groups
                .get(i, "initial_lr")?
                .ok_or_else(|| Error::Key(format!("{who}: param_groups[{i}] has no 'initial_lr'")))
        })
        .collect()
}

impl BoundScheduler {
    /// torch's constructor: the scheduler's group entries, the initial
    /// momentum, `group.setdefault("initial_lr", lr)`, then the initial step.
    pub fn attach(
        groups: &dyn Groups,
        mut core: LrScheduler,
        momentum: Option<Momentum>,
    ) -> Result<Self> {
        for (key, vals) in core.group_overrides() {
            if key == "lr" {
                groups.set_lrs(&vals)?;
            } else {
                for (i, &v) in vals.iter().enumerate() {
                    groups.set(i, key, v)?;
                }
            }
        }
        if let (Some(ms), Some(kind)) = (core.initial_momentum(), momentum) {
            for (i, &m) in ms.iter().enumerate() {
                groups.set_momentum(i, kind, m)?;
            }
        }
        let n = groups.count()?;
        for i in 0..n {
            groups.setdefault_from(i, "initial_lr", "lr")?;
        }
        core.set_initial_lrs(&initial_lrs(groups, core.name())?)?;
        let out = core.initial_step(&groups.lrs()?)?;
        apply(groups, &out, momentum)?;
        Ok(Self {
            core: Core::One(Arc::new(Mutex::new(core))),
            momentum,
        })
    }

    /// torch's SequentialLR: every group's lr reset to its `initial_lr`,
    /// then the first child's initial step. `children` must drive `groups`.
    pub fn sequential(
        groups: &dyn Groups,
        children: &[&BoundScheduler],
        milestones: Vec<i64>,
    ) -> Result<Self> {
        let who = "SequentialLR";
        let mut shared: Vec<SharedScheduler> = Vec::new();
        let mut momenta = Vec::new();
        for (i, c) in children.iter().enumerate() {
            let Core::One(core) = &c.core else {
                return Err(Error::Value(format!(
                    "{who}: schedulers[{i}] is a SequentialLR; nesting is not supported"
                )));
            };
            shared.push(core.clone() as SharedScheduler);
            momenta.push(c.momentum);
        }
        SequentialLR::check(shared.len(), &milestones)?;
        let initial = initial_lrs(groups, who)?;
        groups.set_lrs(&initial)?;
        let (core, out) = SequentialLR::new(shared, milestones, &initial)?;
        apply(groups, &out, momenta.first().copied().flatten())?;
        Ok(Self {
            core: Core::Seq(Mutex::new(core), momenta),
            momentum: None,
        })
    }

    /// One step; `epoch` (deprecated in torch) jumps to that epoch using the
    /// closed form where torch has one.
    pub fn step(&self, groups: &dyn Groups, epoch: Option<f64>) -> Result<()> {
        let cur = groups.lrs()?;
        match &self.core {
            Core::One(c) => {
                let out = lock(c)?.step(&cur, epoch)?;
                apply(groups, &out, self.momentum)
            }
            Core::Seq(core, momenta) => {
                if epoch.is_some() {
                    return Err(Error::Value("SequentialLR.step takes no epoch".into()));
                }
                let (idx, out) = lock(core)?.step(&cur)?;
                apply(groups, &out, momenta.get(idx).copied().flatten())
            }
        }
    }

    pub fn last_lr(&self) -> Result<Vec<f64>> {
        Ok(match &self.core {
            Core::One(c) => lock(c)?.last_lr.clone(),
            Core::Seq(c, _) => lock(c)?.last_lr.clone(),
        })
    }

    pub fn last_epoch(&self) -> Result<i64> {
        Ok(match &self.core {
            Core::One(c) => lock(c)?.last_epoch,
            Core::Seq(c, _) => lock(c)?.last_epoch,
        })
    }

    pub fn base_lrs(&self) -> Result<Vec<f64>> {
        match &self.core {
            Core::One(c) => Ok(lock(c)?.base_lrs.clone()),
            Core::Seq(..) => Err(Error::Value(
                "SequentialLR has no base_lrs of its own".into(),
            )),
        }
    }

    /// The state with torch's key names.
    pub fn state(&self) -> Result<State> {
        match &self.core {
            Core::One(c) => Ok(lock(c)?.state()),
            Core::Seq(c, _) => lock(c)?.state(),
        }
    }

    pub fn load_state(&self, state: &State) -> Result<()> {
        match &self.core {
            Core::One(c) => lock(c)?.load_state(state),
            Core::Seq(c, _) => lock(c)?.load_state(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Plain groups: one map per group, as torch's dicts.
    struct Dicts(RefCell<Vec<BTreeMap<String, f64>>>);

    impl Groups for Dicts {
        fn count(&self) -> Result<usize> {
            Ok(self.0.borrow().len())
        }
        fn lrs(&self) -> Result<Vec<f64>> {
            Ok(self.0.borrow().iter().map(|g| g["lr"]).collect())
        }
        fn set_lrs(&self, lrs: &[f64]) -> Result<()> {
            for (g, &lr) in self.0.borrow_mut().iter_mut().zip(lrs) {
                g.insert("lr".into(), lr);
            }
            Ok(())
        }
        fn get(&self, i: usize, key: &str) -> Result<Option<f64>> {
            Ok(self.0.borrow()[i].get(key).copied())
        }
        fn set(&self, i: usize, key: &str, v: f64) -> Result<()> {
            self.0.borrow_mut()[i].insert(key.into(), v);
            Ok(())
        }
        fn setdefault_from(&self, i: usize, key: &str, from: &str) -> Result<()> {
            let mut g = self.0.borrow_mut();
            let v = g[i][from];
            g[i].entry(key.into()).or_insert(v);
            Ok(())
        }
        fn momentum(&self) -> Result<Option<Momentum>> {
            Ok(Some(Momentum::Momentum))
        }
        fn set_momentum(&self, i: usize, _: Momentum, v: f64) -> Result<()> {
            self.set(i, "momentum", v)
        }
    }

    fn groups(lrs: &[f64]) -> Dicts {
        Dicts(RefCell::new(
            lrs.iter()
                .map(|&lr| BTreeMap::from([("lr".to_string(), lr)]))
                .collect(),
        ))
    }

    #[test]
    fn a_second_scheduler_starts_from_initial_lr() {
        let g = groups(&[0.1]);
        let a = BoundScheduler::attach(&g, LrScheduler::step_lr(1, 0.5).unwrap(), None).unwrap();
        a.step(&g, None).unwrap();
        assert_eq!(g.lrs().unwrap(), vec![0.05]);
        // torch: base_lrs come from group["initial_lr"], kept by the first.
        let b = BoundScheduler::attach(&g, LrScheduler::exponential(0.9).unwrap(), None).unwrap();
        assert_eq!(b.base_lrs().unwrap(), vec![0.1]);
    }

    #[test]
    fn sequential_resets_to_initial_lr_and_rejects_nesting() {
        let g = groups(&[1.0, 2.0]);
        let a = BoundScheduler::attach(&g, LrScheduler::step_lr(1, 0.5).unwrap(), None).unwrap();
        a.step(&g, None).unwrap();
        let b = BoundScheduler::attach(&g, LrScheduler::exponential(0.9).unwrap(), None).unwrap();
        let s = BoundScheduler::sequential(&g, &[&a, &b], vec![2]).unwrap();
        // torch: lrs reset to initial_lr, then the first child's step 1
        // again (StepLR halves): [0.5, 1.0] with torch's own classes.
        assert_eq!(g.lrs().unwrap(), vec![0.5, 1.0]);
        let e = BoundScheduler::sequential(&g, &[&s, &a], vec![1])
            .err()
            .unwrap();
        assert!(e.to_string().contains("nesting"), "{e}");
    }

    #[test]
    fn missing_initial_lr_names_the_group() {
        let g = groups(&[1.0]);
        let e = initial_lrs(&g, "SequentialLR").unwrap_err();
        assert!(matches!(e, Error::Key(_)));
        assert!(e.to_string().contains("param_groups[0]"), "{e}");
    }
}
