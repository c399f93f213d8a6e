//! Learning-rate schedules, in three styles over one core:
//!
//! - [`flodl`]: floDl's pure calculators, `lr(step)` with a 0-based step.
//! - [`kaun`]: Kaun/optax-style functions of the step (callers pass a
//!   1-based step count, as Kaun's `scale_by_schedule` does).
//! - [`torch`], [`plateau`], [`sequential`]: stateful schedulers equal to
//!   `torch.optim.lr_scheduler` value by value. They compute the next lr of
//!   each param group from the current ones (torch's chainable recurrences);
//!   [`bound`] drives an optimizer's param groups through the small
//!   [`groups::Groups`] trait, with torch's base-class protocol.
//!
//! Every constructor validates its arguments and names the bad one.

pub mod bound;
pub mod cycle;
pub mod flodl;
pub mod groups;
pub mod kaun;
pub mod plateau;
pub mod sequential;
pub mod state;
pub mod torch;
mod torch_state;

use std::sync::Arc;

use crate::{Error, Result};

/// A learning rate as a function of the step. `Send + Sync` so a schedule
/// can be shared by a trainer running on another thread.
pub trait Schedule: Send + Sync {
    /// The value at `step`.
    fn lr(&self, step: usize) -> f64;

    /// Fallible form: schedules that call back into user code (a Python
    /// callable) report its failure here; `lr` then returns NaN. Composite
    /// schedules call this on their parts.
    fn try_lr(&self, step: usize) -> Result<f64> {
        Ok(self.lr(step))
    }

    /// The step a trainer passes for its first update: 0 for floDl's
    /// calculators (and callables), 1 for Kaun's functions, whose optimizers
    /// count updates from 1.
    fn first_step(&self) -> usize {
        0
    }
}

/// A shared, dynamically typed schedule.
pub type ArcSchedule = Arc<dyn Schedule>;

pub(crate) fn check_lr(who: &str, name: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(Error::Value(format!(
            "{who}: {name} must be a finite number >= 0, got {v}"
        )));
    }
    Ok(())
}

pub(crate) fn check_finite(who: &str, name: &str, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::Value(format!(
            "{who}: {name} must be finite, got {v}"
        )));
    }
    Ok(())
}

pub(crate) fn check_positive(who: &str, name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::Value(format!("{who}: {name} must be > 0, got {v}")));
    }
    Ok(())
}

pub(crate) fn check_at_least(who: &str, name: &str, v: i64, min: i64) -> Result<()> {
    if v < min {
        return Err(Error::Value(format!(
            "{who}: {name} must be >= {min}, got {v}"
        )));
    }
    Ok(())
}

/// Python's `a ** b` for floats is C `pow`; Rust's `powi` multiplies
/// repeatedly and rounds differently, so integer exponents go through here.
#[inline]
pub(crate) fn pow(a: f64, b: f64) -> f64 {
    a.powf(b)
}
