//! Everything a step does besides forward, loss, backward and the update.

use std::sync::{Arc, Mutex};

use tch::{Device, Kind};

use super::graph_cache::GraphMode;
use super::reads::LossReads;
use crate::amp::{AutocastDevice, GradScaler};
use crate::dist::ProcessGroup;
use crate::sched::ArcSchedule;
use crate::{Error, Result};

/// What a non-finite loss or gradient does (without a GradScaler; with one,
/// the scaler's own skip decides, on device).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinite {
    /// TrainingError naming the step and batch; nothing is updated.
    #[default]
    Raise,
    /// The update is skipped (gradients dropped) and counted.
    Skip,
    /// No check (floDl's behaviour): a non-finite value reaches the weights.
    /// Saves one multi-tensor check and one host read per update.
    Off,
}

impl NonFinite {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "raise" => Ok(NonFinite::Raise),
            "skip" => Ok(NonFinite::Skip),
            "off" => Ok(NonFinite::Off),
            _ => Err(Error::Value(format!(
                "on_nonfinite must be 'raise', 'skip' or 'off', got '{name}'"
            ))),
        }
    }
}

/// What a schedule's argument counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScheduleUnit {
    /// lr = schedule(optimizer steps so far), before every update.
    #[default]
    Step,
    /// lr = schedule(epochs completed): constant within an epoch
    /// (TorchLean's epoch-based loaders).
    Epoch,
}

#[derive(Clone, Default)]
pub struct TrainerOptions {
    /// Clip the joint gradient norm (after unscaling) to this value.
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to ±value.
    pub clip_grad_value: Option<f64>,
    /// The lr before each update, from the step or epoch count.
    pub schedule: Option<ArcSchedule>,
    pub schedule_unit: ScheduleUnit,
    /// Micro-batches per optimizer step (losses are divided by it).
    pub grad_accumulation: usize,
    /// A GradScaler and the key it knows the optimizer by.
    pub scaler: Option<(Arc<Mutex<GradScaler>>, usize)>,
    /// Autocast for the forward and the loss.
    pub autocast: Option<(AutocastDevice, Kind)>,
    pub on_nonfinite: NonFinite,
    /// Where batches go before the forward (None: where they are).
    pub device: Option<Device>,
    /// Data-parallel: gradients (and the window's loss and status) are
    /// averaged over this group before every update.
    pub process_group: Option<Arc<ProcessGroup>>,
    /// Whole-step CUDA graphs (`graph_step.rs`).
    pub cuda_graph: GraphMode,
    /// When losses are read to the host (`reads.rs`).
    pub loss_reads: LossReads,
}

impl TrainerOptions {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("clip_grad_norm", self.clip_grad_norm),
            ("clip_grad_value", self.clip_grad_value),
        ] {
            if let Some(c) = v {
                if c.is_nan() || c <= 0.0 {
                    return Err(Error::Value(format!(
                        "training options: {name} must be > 0, got {c}"
                    )));
                }
            }
        }
        if self.grad_accumulation == 0 {
            return Err(Error::Value(
                "training options: grad_accumulation must be at least 1, got 0".into(),
            ));
        }
        Ok(())
    }
}
