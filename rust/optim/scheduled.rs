//! Kaun's `~lr:schedule`: an optimizer whose learning rate is a function of
//! its update count. Wraps any optimizer; before each update it sets every
//! group's lr to `schedule(n)` with `n` counted from the schedule's first
//! step (1 for Kaun's functions), so the first update sees `schedule(1)`.

use tch::Tensor;

use super::hyper::{HValue, Hyper};
use super::{Impl, Optimizer, ParamGroup, StateDict};
use crate::sched::ArcSchedule;
use crate::Result;

pub struct ScheduledLr {
    inner: Box<dyn Optimizer>,
    schedule: ArcSchedule,
    /// Updates applied so far.
    updates: usize,
}

impl ScheduledLr {
    /// `inner` starts at `schedule`'s first value, so `lr()` reads true
    /// before the first step.
    pub fn new(mut inner: Box<dyn Optimizer>, schedule: ArcSchedule) -> Result<Self> {
        inner.set_lr(schedule.try_lr(schedule.first_step())?)?;
        Ok(ScheduledLr {
            inner,
            schedule,
            updates: 0,
        })
    }

    fn apply(&mut self) -> Result<()> {
        let lr = self
            .schedule
            .try_lr(self.schedule.first_step() + self.updates)?;
        self.inner.set_lr(lr)?;
        self.updates += 1;
        Ok(())
    }
}

impl Optimizer for ScheduledLr {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn step(&mut self) -> Result<()> {
        self.apply()?;
        self.inner.step()
    }
    fn step_amp(&mut self, grad_scale: Option<&Tensor>, found_inf: Option<&Tensor>) -> Result<()> {
        self.apply()?;
        self.inner.step_amp(grad_scale, found_inf)
    }
    fn implementation(&self) -> Impl {
        self.inner.implementation()
    }
    fn zero_grad(&mut self) -> Result<()> {
        self.inner.zero_grad()
    }
    fn lr(&self) -> f64 {
        self.inner.lr()
    }
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.inner.set_lr(lr)
    }
    fn num_groups(&self) -> usize {
        self.inner.num_groups()
    }
    fn group_hyper(&self, i: usize) -> Result<Hyper> {
        self.inner.group_hyper(i)
    }
    fn set_group_hyper(&mut self, i: usize, key: &str, v: HValue) -> Result<()> {
        self.inner.set_group_hyper(i, key, v)
    }
    fn group_params(&self, i: usize) -> Vec<Tensor> {
        self.inner.group_params(i)
    }
    fn add_param_group(&mut self, g: ParamGroup) -> Result<()> {
        self.inner.add_param_group(g)
    }
    fn state_dict(&self) -> StateDict {
        self.inner.state_dict()
    }
    fn load_state_dict(&mut self, sd: StateDict) -> Result<()> {
        self.inner.load_state_dict(sd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Optim, Sgd};
    use crate::sched::Schedule;
    use std::sync::Arc;

    struct Halving;
    impl Schedule for Halving {
        fn lr(&self, step: usize) -> f64 {
            1.0 / (1u64 << step) as f64
        }
        fn first_step(&self) -> usize {
            1
        }
    }

    #[test]
    fn each_update_sees_the_next_step() {
        let p = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let g = ParamGroup::new(vec![p.shallow_clone()], Hyper::default()).expect("group");
        let inner = Optim::new(Sgd, Hyper::default(), vec![g], None).expect("sgd");
        let mut o = ScheduledLr::new(Box::new(inner), Arc::new(Halving)).expect("wrap");
        assert_eq!(o.lr(), 0.5);
        let mut expect = 1.0f64;
        for step in 1..=3 {
            let _ = p.grad().f_zero_();
            p.sum(None).backward();
            o.step().expect("step");
            expect -= 1.0 / (1u64 << step) as f64;
            assert_eq!(o.lr(), 1.0 / (1u64 << step) as f64);
            assert!((p.double_value(&[0]) - expect).abs() < 1e-6);
            o.zero_grad().expect("zero");
        }
    }
}
