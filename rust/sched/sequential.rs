//! `torch.optim.lr_scheduler.SequentialLR`: children run one after another,
//! switching at milestones. The children are shared with their own Python
//! objects (torch's semantics), hence `Arc<Mutex<..>>`.

use std::sync::{Arc, Mutex, MutexGuard};

use super::state::{Loader, State, Val};
use super::torch::{LrSchedulerCore, StepOutput};
use crate::{Error, Result};

pub type SharedScheduler = Arc<Mutex<dyn LrSchedulerCore>>;

pub struct SequentialLR {
    pub children: Vec<SharedScheduler>,
    pub milestones: Vec<i64>,
    pub last_epoch: i64,
    pub last_lr: Vec<f64>,
}

fn lock(s: &SharedScheduler) -> Result<MutexGuard<'_, dyn LrSchedulerCore + 'static>> {
    s.lock()
        .map_err(|_| Error::Internal("SequentialLR: a child scheduler is poisoned".into()))
}

impl SequentialLR {
    /// torch's argument checks: at least one scheduler, one milestone fewer.
    pub fn check(n_children: usize, milestones: &[i64]) -> Result<()> {
        if n_children == 0 {
            return Err(Error::Value(
                "SequentialLR expects at least one scheduler, got none".into(),
            ));
        }
        if milestones.len() + 1 != n_children {
            return Err(Error::Value(format!(
                "SequentialLR expects one milestone fewer than schedulers: got {} schedulers \
                 and {} milestones",
                n_children,
                milestones.len()
            )));
        }
        Ok(())
    }

    /// torch's constructor after it reset every group's lr to its
    /// `initial_lr`: `initial` are those lrs. Returns the lrs to write.
    pub fn new(
        children: Vec<SharedScheduler>,
        milestones: Vec<i64>,
        initial: &[f64],
    ) -> Result<(Self, StepOutput)> {
        Self::check(children.len(), &milestones)?;
        for c in &children {
            lock(c)?.undo();
        }
        let out = lock(&children[0])?.initial_step(initial)?;
        let last_lr = lock(&children[0])?.last_lr();
        Ok((
            Self {
                children,
                milestones,
                last_epoch: 0,
                last_lr,
            },
            out,
        ))
    }

    /// One step; returns the index of the child that ran and its output.
    pub fn step(&mut self, current: &[f64]) -> Result<(usize, StepOutput)> {
        self.last_epoch += 1;
        let idx = self.milestones.partition_point(|&m| m <= self.last_epoch);
        let mut child = lock(&self.children[idx])?;
        let out = if idx > 0 && self.milestones[idx - 1] == self.last_epoch {
            child.update_lr_at(current, 0)?
        } else {
            child.step(current, None)?
        };
        self.last_lr = child.last_lr();
        Ok((idx, out))
    }

    pub fn state(&self) -> Result<State> {
        let mut kids = Vec::with_capacity(self.children.len());
        for c in &self.children {
            kids.push(lock(c)?.state());
        }
        Ok(vec![
            ("_milestones".into(), Val::Ints(self.milestones.clone())),
            ("last_epoch".into(), Val::Int(self.last_epoch)),
            ("_last_lr".into(), Val::Floats(self.last_lr.clone())),
            ("_schedulers".into(), Val::States(kids)),
        ])
    }

    pub fn load_state(&mut self, state: &State) -> Result<()> {
        let l = Loader::new("SequentialLR", state);
        let Val::States(kids) = l.get("_schedulers")? else {
            return Err(Error::Value(
                "SequentialLR.load_state_dict: '_schedulers' must be a list of state dicts".into(),
            ));
        };
        if kids.len() != self.children.len() {
            return Err(Error::Value(format!(
                "SequentialLR.load_state_dict: {} scheduler states for {} schedulers",
                kids.len(),
                self.children.len()
            )));
        }
        let milestones: Vec<i64> = l
            .f64s("_milestones")?
            .into_iter()
            .map(|m| m as i64)
            .collect();
        let last_epoch = l.i64("last_epoch")?;
        let last_lr = l.f64s_or("_last_lr", &self.last_lr)?;
        for (c, s) in self.children.iter().zip(kids) {
            lock(c)?.load_state(s)?;
        }
        self.milestones = milestones;
        self.last_epoch = last_epoch;
        self.last_lr = last_lr;
        Ok(())
    }
}
