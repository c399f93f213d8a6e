//! Kaun-style schedules (raven-ml/raven `kaun`, module `Schedule`): plain
//! functions of the step count. Kaun's optimizers call them with the 1-based
//! count of updates, so the first update sees `step = 1`.
//!
//! Followed exactly: `constant`, `cosine_decay`, `warmup_linear`,
//! `exponential_decay`, `warmup_cosine` (3 arguments: a cosine ramp) and
//! `warmup_cosine_decay` (linear warmup over `warmup_steps`, then a cosine
//! from peak to `end_value` over the next `decay_steps`). `join` follows
//! optax's `join_schedules`: past boundary `b` the next schedule sees
//! `step − b`.

use std::f64::consts::PI;

use super::{check_at_least, check_finite, check_positive, pow, ArcSchedule, Schedule};
use crate::{Error, Result};

fn cosine_decay_factor(ratio: f64) -> f64 {
    0.5 * (1.0 + (PI * ratio).cos())
}

/// Constant value.
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, _step: usize) -> f64 {
        self.0
    }
}

/// Kaun's `cosine_decay`: `((1 − α)·½(1 + cos(π step/decay_steps)) + α)·init`,
/// and `α·init` from `decay_steps` on.
pub struct CosineDecay {
    init: f64,
    decay_steps: usize,
    alpha: f64,
}

impl CosineDecay {
    pub fn new(init_value: f64, decay_steps: i64, alpha: f64) -> Result<Self> {
        check_finite("cosine_decay", "init_value", init_value)?;
        check_finite("cosine_decay", "alpha", alpha)?;
        check_at_least("cosine_decay", "decay_steps", decay_steps, 1)?;
        Ok(Self {
            init: init_value,
            decay_steps: decay_steps as usize,
            alpha,
        })
    }
}

impl Schedule for CosineDecay {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, step: usize) -> f64 {
        if step >= self.decay_steps {
            return self.alpha * self.init;
        }
        let ratio = step as f64 / self.decay_steps as f64;
        ((1.0 - self.alpha) * cosine_decay_factor(ratio) + self.alpha) * self.init
    }
}

/// Kaun's `warmup_linear`: `init + (peak − init)·step/warmup_steps`, then
/// `peak` from `warmup_steps` on.
pub struct WarmupLinear {
    init: f64,
    peak: f64,
    warmup_steps: usize,
}

impl WarmupLinear {
    pub fn new(init_value: f64, peak_value: f64, warmup_steps: i64) -> Result<Self> {
        check_finite("warmup_linear", "init_value", init_value)?;
        check_finite("warmup_linear", "peak_value", peak_value)?;
        check_at_least("warmup_linear", "warmup_steps", warmup_steps, 1)?;
        Ok(Self {
            init: init_value,
            peak: peak_value,
            warmup_steps: warmup_steps as usize,
        })
    }
}

impl Schedule for WarmupLinear {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, step: usize) -> f64 {
        if step >= self.warmup_steps {
            return self.peak;
        }
        let ratio = step as f64 / self.warmup_steps as f64;
        self.init + (self.peak - self.init) * ratio
    }
}

/// Kaun's `warmup_cosine` (3 arguments): a half-cosine ramp
/// `init + (peak − init)·(1 − ½(1 + cos(π step/warmup)))`, then `peak`.
pub struct WarmupCosine {
    init: f64,
    peak: f64,
    warmup_steps: usize,
}

impl WarmupCosine {
    pub fn new(init_value: f64, peak_value: f64, warmup_steps: i64) -> Result<Self> {
        check_finite("warmup_cosine", "init_value", init_value)?;
        check_finite("warmup_cosine", "peak_value", peak_value)?;
        check_at_least("warmup_cosine", "warmup_steps", warmup_steps, 1)?;
        Ok(Self {
            init: init_value,
            peak: peak_value,
            warmup_steps: warmup_steps as usize,
        })
    }
}

impl Schedule for WarmupCosine {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, step: usize) -> f64 {
        if step >= self.warmup_steps {
            return self.peak;
        }
        let ratio = step as f64 / self.warmup_steps as f64;
        self.init + (self.peak - self.init) * (1.0 - cosine_decay_factor(ratio))
    }
}

/// Kaun's `warmup_cosine_decay`: for `step ≤ warmup_steps` linear from init
/// to peak; then with `d = step − warmup_steps`, a cosine from peak to
/// `end_value` over `decay_steps`, and `end_value` from `d ≥ decay_steps` on.
/// (optax's `warmup_cosine_decay_schedule` counts `decay_steps` from 0
/// including the warmup; Kaun, followed here, counts them after it.)
pub struct WarmupCosineDecay {
    init: f64,
    peak: f64,
    warmup_steps: usize,
    decay_steps: usize,
    end: f64,
}

impl WarmupCosineDecay {
    pub fn new(
        init_value: f64,
        peak_value: f64,
        warmup_steps: i64,
        decay_steps: i64,
        end_value: f64,
    ) -> Result<Self> {
        let who = "warmup_cosine";
        check_finite(who, "init_value", init_value)?;
        check_finite(who, "peak_value", peak_value)?;
        check_finite(who, "end_value", end_value)?;
        check_at_least(who, "warmup_steps", warmup_steps, 1)?;
        check_at_least(who, "decay_steps", decay_steps, 1)?;
        Ok(Self {
            init: init_value,
            peak: peak_value,
            warmup_steps: warmup_steps as usize,
            decay_steps: decay_steps as usize,
            end: end_value,
        })
    }
}

impl Schedule for WarmupCosineDecay {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, step: usize) -> f64 {
        if step <= self.warmup_steps {
            let ratio = step as f64 / self.warmup_steps as f64;
            return self.init + (self.peak - self.init) * ratio;
        }
        let d = step - self.warmup_steps;
        if d >= self.decay_steps {
            return self.end;
        }
        let ratio = d as f64 / self.decay_steps as f64;
        self.end + (self.peak - self.end) * cosine_decay_factor(ratio)
    }
}

/// Kaun's `exponential_decay`: `init · rate^(step / decay_steps)` (continuous).
pub struct ExponentialDecay {
    init: f64,
    rate: f64,
    decay_steps: usize,
}

impl ExponentialDecay {
    pub fn new(init_value: f64, decay_rate: f64, decay_steps: i64) -> Result<Self> {
        check_finite("exponential_decay", "init_value", init_value)?;
        check_positive("exponential_decay", "decay_rate", decay_rate)?;
        check_at_least("exponential_decay", "decay_steps", decay_steps, 1)?;
        Ok(Self {
            init: init_value,
            rate: decay_rate,
            decay_steps: decay_steps as usize,
        })
    }
}

impl Schedule for ExponentialDecay {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, step: usize) -> f64 {
        self.init * pow(self.rate, step as f64 / self.decay_steps as f64)
    }
}

/// optax's `join_schedules`: `schedules[0]` before `boundaries[0]`; from
/// boundary `b_i` on, `schedules[i+1](step − b_i)`.
pub struct Join {
    schedules: Vec<ArcSchedule>,
    boundaries: Vec<usize>,
}

impl Join {
    pub fn new(schedules: Vec<ArcSchedule>, boundaries: Vec<i64>) -> Result<Self> {
        if schedules.is_empty() {
            return Err(Error::Value("join: schedules must not be empty".into()));
        }
        if boundaries.len() + 1 != schedules.len() {
            return Err(Error::Value(format!(
                "join: expected {} boundaries for {} schedules, got {}",
                schedules.len() - 1,
                schedules.len(),
                boundaries.len()
            )));
        }
        for (i, b) in boundaries.iter().enumerate() {
            check_at_least("join", &format!("boundaries[{i}]"), *b, 0)?;
            if i > 0 && *b < boundaries[i - 1] {
                return Err(Error::Value(format!(
                    "join: boundaries must be non-decreasing, got {boundaries:?}"
                )));
            }
        }
        Ok(Self {
            schedules,
            boundaries: boundaries.into_iter().map(|b| b as usize).collect(),
        })
    }
}

impl Schedule for Join {
    fn first_step(&self) -> usize {
        1
    }

    fn lr(&self, step: usize) -> f64 {
        self.try_lr(step).unwrap_or(f64::NAN)
    }

    fn try_lr(&self, step: usize) -> Result<f64> {
        let i = self.boundaries.partition_point(|&b| b <= step);
        let offset = if i == 0 { 0 } else { self.boundaries[i - 1] };
        self.schedules[i].try_lr(step - offset)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn kaun_values() {
        let c = CosineDecay::new(1.0, 10, 0.1).unwrap();
        assert_eq!(c.lr(0), 1.0);
        assert!((c.lr(5) - 0.55).abs() < 1e-15);
        assert!((c.lr(10) - 0.1).abs() < 1e-15);
        let w = WarmupLinear::new(0.0, 1.0, 4).unwrap();
        assert_eq!((w.lr(1), w.lr(4), w.lr(9)), (0.25, 1.0, 1.0));
        let e = ExponentialDecay::new(1.0, 0.5, 2).unwrap();
        assert!((e.lr(1) - 0.5f64.sqrt()).abs() < 1e-15 && e.lr(4) == 0.25);
        let wc = WarmupCosineDecay::new(0.0, 1.0, 2, 4, 0.2).unwrap();
        assert_eq!((wc.lr(1), wc.lr(2)), (0.5, 1.0));
        assert!((wc.lr(4) - 0.6).abs() < 1e-15 && wc.lr(6) == 0.2 && wc.lr(60) == 0.2);
        assert!(CosineDecay::new(1.0, 0, 0.0).is_err());
    }

    #[test]
    fn join_offsets() {
        let j = Join::new(
            vec![
                Arc::new(WarmupLinear::new(0.0, 1.0, 10).unwrap()),
                Arc::new(ExponentialDecay::new(1.0, 0.5, 1).unwrap()),
            ],
            vec![10],
        )
        .unwrap();
        assert_eq!((j.lr(5), j.lr(10), j.lr(12)), (0.5, 1.0, 0.25));
        assert!(Join::new(vec![Arc::new(Constant(1.0))], vec![3]).is_err());
    }
}
