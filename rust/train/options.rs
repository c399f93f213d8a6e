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

impl ScheduleUnit {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "step" => Ok(ScheduleUnit::Step),
            "epoch" => Ok(ScheduleUnit::Epoch),
            _ => Err(Error::Value(format!(
                "Trainer: schedule_unit must be 'step' or 'epoch', got '{name}'"
            ))),
        }
    }
}

/// A Trainer option's default, as the caller writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptionDefault {
    None,
    Str(&'static str),
    Int(i64),
    Bool(bool),
}

/// Every `Trainer` option after (model, optimizer), in signature order, with
/// its default and a one-line doc: the one source the binding and
/// `ferrotorch.Trainer`'s signature and docstring read.
pub const TRAINER_OPTIONS: &[(&str, OptionDefault, &str)] = {
    use OptionDefault::{Bool, Int, None, Str};
    &[
        (
            "loss",
            Str("mse"),
            "a built-in loss name, a ferrotorch.losses class or a callable",
        ),
        (
            "scheduler",
            None,
            "a schedule (lr before every update) or a torch-style scheduler",
        ),
        (
            "clip_grad_norm",
            None,
            "clip the joint gradient norm to this (> 0)",
        ),
        (
            "clip_grad_value",
            None,
            "clamp every gradient element to ±this (> 0)",
        ),
        ("scaler", None, "a GradScaler"),
        (
            "amp",
            None,
            "torch.float16 or torch.bfloat16: autocast for the forward",
        ),
        (
            "grad_accumulation",
            Int(1),
            "micro-batches per optimizer update (>= 1)",
        ),
        ("metrics", None, "metrics for evaluate and fit's validation"),
        ("device", None, "where every batch goes"),
        ("on_nonfinite", Str("raise"), "'raise', 'skip' or 'off'"),
        (
            "schedule_unit",
            Str("step"),
            "what a schedule counts: 'step' or 'epoch'",
        ),
        (
            "distributed",
            None,
            "join torch.distributed's process group (None: when one is initialised)",
        ),
        (
            "cuda_graph",
            Bool(false),
            "whole-step CUDA graphs: True, False, 'auto' or 'emulate'",
        ),
        (
            "loss_reads",
            Str("auto"),
            "when losses are read to the host: 'auto', 'batched' or 'step'",
        ),
    ]
};

#[derive(Clone)]
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
        Self::accumulation(self.grad_accumulation as i64)?;
        Ok(())
    }

    /// `grad_accumulation` as given (the one check of it).
    pub fn accumulation(n: i64) -> Result<usize> {
        usize::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
            Error::Value(format!(
                "training options: grad_accumulation must be an int >= 1, got {n}"
            ))
        })
    }
}

impl Default for TrainerOptions {
    /// The table's defaults (`TRAINER_OPTIONS`).
    fn default() -> Self {
        TrainerOptions {
            clip_grad_norm: None,
            clip_grad_value: None,
            schedule: None,
            schedule_unit: ScheduleUnit::default(),
            grad_accumulation: 1,
            scaler: None,
            autocast: None,
            on_nonfinite: NonFinite::default(),
            device: None,
            process_group: None,
            cuda_graph: GraphMode::default(),
            loss_reads: LossReads::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_of(name: &str) -> OptionDefault {
        TRAINER_OPTIONS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, d, _)| *d)
            .unwrap_or_else(|| panic!("{name} is not in the table"))
    }

    #[test]
    fn the_table_is_the_default_options() {
        let o = TrainerOptions::default();
        let s = |n| match default_of(n) {
            OptionDefault::Str(s) => s,
            d => panic!("{n}: {d:?}"),
        };
        assert_eq!(
            NonFinite::from_name(s("on_nonfinite")).ok(),
            Some(o.on_nonfinite)
        );
        assert_eq!(
            ScheduleUnit::from_name(s("schedule_unit")).ok(),
            Some(o.schedule_unit)
        );
        assert_eq!(
            LossReads::from_name(s("loss_reads")).ok(),
            Some(o.loss_reads)
        );
        assert_eq!(default_of("cuda_graph"), OptionDefault::Bool(false));
        assert_eq!(o.cuda_graph, GraphMode::from_name("off").expect("off"));
        assert_eq!(default_of("grad_accumulation"), OptionDefault::Int(1));
        assert_eq!(o.grad_accumulation, 1);
        o.validate().expect("defaults are valid");
    }

    #[test]
    fn grad_accumulation_has_one_check() {
        assert_eq!(TrainerOptions::accumulation(4).ok(), Some(4));
        for bad in [0, -2] {
            let e = TrainerOptions::accumulation(bad)
                .expect_err("bad")
                .to_string();
            assert!(
                e.contains(&format!("must be an int >= 1, got {bad}")),
                "{e}"
            );
        }
    }
}
