//! Optimizers: numerically torch.optim, one file per algorithm over a shared
//! driver (`driver.rs`: groups, state, buckets, state dicts). Each algorithm
//! has explicit update paths (`Impl`): a fused kernel where libtorch has one,
//! `_foreach_*` multi-tensor ops, and a per-tensor reference for the tests.

mod adagrad;
mod adam;
mod adamax;
mod common;
pub mod driver;
mod group;
pub mod hyper;
mod lamb;
mod nadam;
mod radam;
pub mod registry;
mod rmsprop;
mod scheduled;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use driver::{Algorithm, Optim};
pub use group::ParamGroup;
pub use hyper::{HValue, Hyper};
pub use lamb::Lamb;
pub use nadam::NAdam;
pub use radam::RAdam;
pub use rmsprop::RMSprop;
pub use scheduled::ScheduledLr;
pub use sgd::Sgd;

use tch::Tensor;

use crate::Result;

/// How an optimizer updates its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// One fused kernel per (device, dtype) bucket of a group.
    Fused,
    /// `_foreach_*` multi-tensor kernels, a handful per bucket.
    Foreach,
    /// One small op sequence per tensor: slow, the reference for tests.
    Reference,
}

impl Impl {
    /// `None` for "auto" (fused where it exists, else foreach).
    pub fn from_name(name: &str) -> Result<Option<Self>> {
        match name {
            "auto" => Ok(None),
            "fused" => Ok(Some(Impl::Fused)),
            "foreach" => Ok(Some(Impl::Foreach)),
            "reference" | "per_tensor" => Ok(Some(Impl::Reference)),
            _ => Err(crate::Error::Value(format!(
                "unknown optimizer implementation '{name}'; expected 'auto', 'fused', 'foreach' or 'reference'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Impl::Fused => "fused",
            Impl::Foreach => "foreach",
            Impl::Reference => "reference",
        }
    }
}

/// An optimizer's state in torch.optim's layout: groups (hyperparameters and
/// the global ids of their parameters) and per-parameter named state.
pub struct StateDict {
    pub groups: Vec<(Hyper, Vec<usize>)>,
    pub state: Vec<(usize, Vec<(String, Tensor)>)>,
}

/// The interface the Trainer, schedulers and bindings drive.
pub trait Optimizer: Send {
    fn name(&self) -> &str;
    /// Applies one update to every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;
    /// A step whose fused kernel unscales by `grad_scale` and skips itself
    /// where `found_inf` is set (GradScaler), all on device.
    fn step_amp(&mut self, grad_scale: Option<&Tensor>, found_inf: Option<&Tensor>) -> Result<()>;
    fn implementation(&self) -> Impl;
    /// Sets every parameter's gradient to None (torch's set_to_none=True).
    fn zero_grad(&mut self) -> Result<()>;
    /// The learning rate of the first group.
    fn lr(&self) -> f64;
    /// Sets the learning rate of every group.
    fn set_lr(&mut self, lr: f64) -> Result<()>;
    fn num_groups(&self) -> usize;
    fn group_hyper(&self, i: usize) -> Result<Hyper>;
    fn set_group_hyper(&mut self, i: usize, key: &str, v: HValue) -> Result<()>;
    fn group_params(&self, i: usize) -> Vec<Tensor>;
    fn add_param_group(&mut self, g: ParamGroup) -> Result<()>;
    fn state_dict(&self) -> StateDict;
    /// Validates everything first; on error the optimizer is unchanged.
    fn load_state_dict(&mut self, sd: StateDict) -> Result<()>;

    /// The capturable path (fused only): each group's lr lives in a device
    /// tensor that `set_lr` writes in place, so a captured CUDA graph reads
    /// the current lr; step counters are already on the device.
    fn set_capturable(&mut self, on: bool) -> Result<()> {
        if on {
            return Err(crate::Error::Value(format!(
                "{}: this optimizer has no capturable path (a fused ferrotorch optimizer has)",
                self.name()
            )));
        }
        Ok(())
    }
    fn capturable(&self) -> bool {
        false
    }
    /// Bumped by every change that a captured step cannot see: a group
    /// added, state loaded (new tensors), a hyperparameter other than lr
    /// changed (baked into the kernels' arguments).
    fn capture_generation(&self) -> u64 {
        0
    }

    /// Sets group `i`'s learning rate.
    fn set_group_lr(&mut self, i: usize, lr: f64) -> Result<()> {
        self.set_group_hyper(i, "lr", HValue::F(lr))
    }
    /// Multiplies every group's learning rate by `factor`.
    fn scale_lr(&mut self, factor: f64) -> Result<()> {
        for i in 0..self.num_groups() {
            let lr = self.group_hyper(i)?.f("lr")?;
            self.set_group_lr(i, lr * factor)?;
        }
        Ok(())
    }
}
