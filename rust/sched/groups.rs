//! The optimizer a torch-style scheduler drives, as torch's schedulers see
//! it: param groups holding `lr`, `initial_lr`, `momentum` or `betas`, and
//! the keys the schedulers add (`max_lr`, `base_momentum`, ...). The
//! bindings implement [`Groups`] over a Python object; torch's protocol
//! (setdefault of `initial_lr`, momentum cycling, SequentialLR's reset)
//! lives in [`super::bound`], once for every optimizer.

use super::torch::PerGroup;
use crate::{Error, Result};

/// The momentum a cycling scheduler moves: Adam-style `betas[0]`, or SGD's
/// `momentum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Momentum {
    Beta1,
    Momentum,
}

/// An optimizer's param groups. Methods take `&self`: implementations
/// write through to the optimizer they view.
pub trait Groups {
    fn count(&self) -> Result<usize>;
    fn lrs(&self) -> Result<Vec<f64>>;
    fn set_lrs(&self, lrs: &[f64]) -> Result<()>;
    /// A per-group number other than the lr; `None` where the group lacks it.
    fn get(&self, group: usize, key: &str) -> Result<Option<f64>>;
    fn set(&self, group: usize, key: &str, value: f64) -> Result<()>;
    /// torch's `group.setdefault(key, copy of group[from])`.
    fn setdefault_from(&self, group: usize, key: &str, from: &str) -> Result<()>;
    /// Which momentum the optimizer's defaults hold, if any.
    fn momentum(&self) -> Result<Option<Momentum>>;
    fn set_momentum(&self, group: usize, kind: Momentum, value: f64) -> Result<()>;
}

/// torch's schedulers take `last_epoch=-1` only here: resuming goes through
/// `load_state_dict`.
pub fn check_last_epoch(who: &str, last_epoch: i64) -> Result<()> {
    if last_epoch != -1 {
        return Err(Error::Value(format!(
            "{who}: last_epoch={last_epoch} is not supported (only -1); \
             resume with load_state_dict instead"
        )));
    }
    Ok(())
}

/// The momentum to cycle when `cycle_momentum` is on; an optimizer with
/// neither `momentum` nor `betas` is an error, as in torch.
pub fn cycled_momentum(who: &str, groups: &dyn Groups, on: bool) -> Result<Option<Momentum>> {
    if !on {
        return Ok(None);
    }
    match groups.momentum()? {
        Some(m) => Ok(Some(m)),
        None => Err(Error::Value(format!(
            "{who}: cycle_momentum=True needs an optimizer with 'momentum' or 'betas' \
             in its defaults (torch.optim); pass cycle_momentum=False"
        ))),
    }
}

/// `(base_momentum, max_momentum)` per group when momentum is cycled, with
/// the scheduler's own defaults (CyclicLR 0.8/0.9, OneCycleLR 0.85/0.95).
pub fn momentum_range(
    who: &str,
    groups: usize,
    cycled: Option<Momentum>,
    base: Option<PerGroup>,
    max: Option<PerGroup>,
    defaults: (f64, f64),
) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
    if cycled.is_none() {
        return Ok(None);
    }
    let base = base.unwrap_or(PerGroup::One(defaults.0));
    let max = max.unwrap_or(PerGroup::One(defaults.1));
    Ok(Some((
        base.expand(who, "base_momentum", groups)?,
        max.expand(who, "max_momentum", groups)?,
    )))
}

/// OneCycleLR's length: `total_steps`, or `epochs * steps_per_epoch`.
pub fn one_cycle_total(
    who: &str,
    total_steps: Option<i64>,
    epochs: Option<i64>,
    steps_per_epoch: Option<i64>,
) -> Result<i64> {
    match (total_steps, epochs, steps_per_epoch) {
        (Some(t), _, _) => Ok(t),
        (None, Some(e), Some(s)) => {
            if e <= 0 {
                return Err(Error::Value(format!("{who}: epochs must be >= 1, got {e}")));
            }
            if s <= 0 {
                return Err(Error::Value(format!(
                    "{who}: steps_per_epoch must be >= 1, got {s}"
                )));
            }
            Ok(e * s)
        }
        _ => Err(Error::Value(format!(
            "{who}: give either total_steps or (epochs and steps_per_epoch)"
        ))),
    }
}

/// CyclicLR's `scale_mode`: true when the scale function takes the cycle.
pub fn scale_by_cycle(who: &str, scale_mode: &str) -> Result<bool> {
    match scale_mode {
        "cycle" => Ok(true),
        "iterations" => Ok(false),
        m => Err(Error::Value(format!(
            "{who}: scale_mode must be 'cycle' or 'iterations', got '{m}'"
        ))),
    }
}
