//! floDl's `Graph::step()` driving, on the training side: the optimizer,
//! schedule, lr scale, process group and training-step counter a graph
//! carries for floDl's loop. The graph holds it as a `graph::StepDriver`
//! (created here on first use); execution never reads it.

use std::sync::{Arc, Mutex, MutexGuard};

use tch::Tensor;

use super::update::{self, Outcome};
use super::TrainerOptions;
use crate::dist::ProcessGroup;
use crate::graph::{Graph, StepDriver};
use crate::optim::Optimizer;
use crate::sched::ArcSchedule;
use crate::{Error, Result};

#[derive(Default)]
struct Driving {
    optimizer: Option<Arc<Mutex<dyn Optimizer>>>,
    schedule: Option<ArcSchedule>,
    lr_scale: Option<f64>,
    training_step: u64,
    /// Data-parallel `step()`: gradients averaged over this group first.
    process_group: Option<Arc<ProcessGroup>>,
}

/// What a graph carries for `step()`.
#[derive(Default)]
pub struct GraphDriver(Mutex<Driving>);

impl GraphDriver {
    fn get(&self) -> MutexGuard<'_, Driving> {
        // Plain settings and a counter: a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StepDriver for GraphDriver {
    fn set_optimizer(&self, opt: Arc<Mutex<dyn Optimizer>>) {
        self.get().optimizer = Some(opt);
    }

    fn set_scheduler(&self, s: Option<ArcSchedule>) {
        self.get().schedule = s;
    }

    fn set_process_group(&self, pg: Option<Arc<ProcessGroup>>) {
        self.get().process_group = pg;
    }

    fn set_lr_scale(&self, f: f64) {
        self.get().lr_scale = Some(f);
    }

    fn training_step(&self) -> u64 {
        self.get().training_step
    }

    fn step(&self) -> Result<()> {
        let (opt, sched, scale, t, pg) = {
            let d = self.get();
            (
                d.optimizer.clone(),
                d.schedule.clone(),
                d.lr_scale.unwrap_or(1.0),
                d.training_step,
                d.process_group.clone(),
            )
        };
        if let Some(opt) = opt {
            let mut o = update::lock(&opt, "graph's optimizer")?;
            let lr = match sched {
                Some(s) => Some(s.try_lr(s.first_step() + t as usize)? * scale),
                None => None,
            };
            // The engine's update half: non-finite check, lr, optimizer.
            let params = crate::amp::all_params(&*o);
            if let Some(pg) = &pg {
                let grads: Vec<Tensor> = params.iter().filter_map(crate::tensor::grad_of).collect();
                pg.all_reduce_mean_(&grads)?;
            }
            let opts = TrainerOptions::default();
            let outcome = update::apply(&mut *o, &params, &opts, lr, true)?;
            o.zero_grad()?;
            if outcome == Outcome::NonFinite {
                return Err(Error::Training(format!(
                    "graph step: non-finite gradient at training step {t}; the update was not applied \
                     and the gradients were dropped"
                )));
            }
        }
        self.get().training_step += 1;
        Ok(())
    }
}

/// The graph's driver, created on first use.
fn driver(g: &Graph) -> &dyn StepDriver {
    g.driver
        .get_or_init(|| Box::new(GraphDriver::default()))
        .as_ref()
}

impl Graph {
    /// Attaches the optimizer that `step()` drives (floDl's set_optimizer).
    pub fn set_optimizer(&self, opt: Arc<Mutex<dyn Optimizer>>) {
        driver(self).set_optimizer(opt)
    }

    /// lr = schedule(training_step) · lr_scale before each `step()`.
    pub fn set_scheduler(&self, s: Option<ArcSchedule>) {
        driver(self).set_scheduler(s)
    }

    /// Averages gradients over `pg` at every `step()` (None: one process).
    pub fn set_process_group(&self, pg: Option<Arc<ProcessGroup>>) {
        driver(self).set_process_group(pg)
    }

    pub fn set_lr_scale(&self, f: f64) {
        driver(self).set_lr_scale(f)
    }

    pub fn training_step(&self) -> u64 {
        driver(self).training_step()
    }

    /// floDl's `Graph::step()`: scheduled lr, optimizer step, zero_grad,
    /// training_step += 1 (only the counter without an optimizer).
    pub fn step(&self) -> Result<()> {
        driver(self).step()
    }
}
