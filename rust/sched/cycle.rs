//! CyclicLR and OneCycleLR: their settings, constructors and `get_lr`.

use std::f64::consts::PI;

use super::torch::{Kind, LrScheduler, StepOutput};
use super::{check_at_least, check_finite, check_lr, pow, ArcSchedule};
use crate::{Error, Result};

#[derive(Clone)]
pub enum CyclicMode {
    Triangular,
    Triangular2,
    ExpRange,
    /// A user function of the cycle number (`cycle_mode = true`) or of the
    /// iteration.
    Custom(ArcSchedule),
}

#[derive(Clone)]
pub struct Cyclic {
    pub max_lrs: Vec<f64>,
    pub total_size: f64,
    pub step_ratio: f64,
    pub mode: String,
    pub mode_fn: CyclicMode,
    pub gamma: f64,
    /// true: "cycle", false: "iterations".
    pub scale_by_cycle: bool,
    pub momentums: Option<(Vec<f64>, Vec<f64>)>, // (base, max)
}

#[derive(Clone)]
pub struct OneCycle {
    pub total_steps: i64,
    /// (end_step, start, end, start_momentum, end_momentum) with the values
    /// indexing [initial, max, min] and [max_momentum, base_momentum].
    pub phases: Vec<(f64, usize, usize, usize, usize)>,
    pub three_phase: bool,
    pub cos: bool,
    /// Per group: [initial_lr, max_lr, min_lr] (torch keeps them in the group).
    pub lrs: Vec<[f64; 3]>,
    /// Per group: [max_momentum, base_momentum].
    pub momentums: Option<Vec<[f64; 2]>>,
}

fn anneal(cos: bool, start: f64, end: f64, pct: f64) -> f64 {
    if cos {
        let cos_out = (PI * pct).cos() + 1.0;
        end + (start - end) / 2.0 * cos_out
    } else {
        (end - start) * pct + start
    }
}

impl LrScheduler {
    /// CyclicLR. `base_lrs` / `max_lrs` are per group; `momentum` is
    /// `Some((base, max))` per group when `cycle_momentum`.
    #[allow(clippy::too_many_arguments)]
    pub fn cyclic(
        base_lrs: Vec<f64>,
        max_lrs: Vec<f64>,
        step_size_up: f64,
        step_size_down: Option<f64>,
        mode: &str,
        gamma: f64,
        scale_fn: Option<(ArcSchedule, bool)>,
        momentum: Option<(Vec<f64>, Vec<f64>)>,
    ) -> Result<Self> {
        let who = "CyclicLR";
        for (i, (&b, &m)) in base_lrs.iter().zip(&max_lrs).enumerate() {
            check_lr(who, &format!("base_lr[{i}]"), b)?;
            check_lr(who, &format!("max_lr[{i}]"), m)?;
        }
        if !(step_size_up.is_finite() && step_size_up > 0.0) {
            return Err(Error::Value(format!(
                "{who}: step_size_up must be > 0, got {step_size_up}"
            )));
        }
        let down = step_size_down.unwrap_or(step_size_up);
        if !(down.is_finite() && down > 0.0) {
            return Err(Error::Value(format!(
                "{who}: step_size_down must be > 0, got {down}"
            )));
        }
        check_finite(who, "gamma", gamma)?;
        let total_size = step_size_up + down;
        let (mode_fn, scale_by_cycle) = match scale_fn {
            Some((f, by_cycle)) => (CyclicMode::Custom(f), by_cycle),
            None => match mode {
                "triangular" => (CyclicMode::Triangular, true),
                "triangular2" => (CyclicMode::Triangular2, true),
                "exp_range" => (CyclicMode::ExpRange, false),
                other => {
                    return Err(Error::Value(format!(
                        "{who}: mode must be 'triangular', 'triangular2' or 'exp_range' \
                         (or give scale_fn), got '{other}'"
                    )))
                }
            },
        };
        let mut s = Self::with(Kind::Cyclic(Box::new(Cyclic {
            max_lrs,
            total_size,
            step_ratio: step_size_up / total_size,
            mode: mode.to_string(),
            mode_fn,
            gamma,
            scale_by_cycle,
            momentums: momentum,
        })));
        s.base_lrs = base_lrs;
        Ok(s)
    }

    /// OneCycleLR over per-group `max_lrs`; `momentum` is `Some((base, max))`
    /// per group when `cycle_momentum`.
    #[allow(clippy::too_many_arguments)]
    pub fn one_cycle(
        max_lrs: Vec<f64>,
        total_steps: i64,
        pct_start: f64,
        anneal_strategy: &str,
        div_factor: f64,
        final_div_factor: f64,
        three_phase: bool,
        momentum: Option<(Vec<f64>, Vec<f64>)>,
    ) -> Result<Self> {
        let who = "OneCycleLR";
        check_at_least(who, "total_steps", total_steps, 1)?;
        if !(0.0..=1.0).contains(&pct_start) {
            return Err(Error::Value(format!(
                "{who}: pct_start must be in [0, 1], got {pct_start}"
            )));
        }
        let cos = match anneal_strategy {
            "cos" => true,
            "linear" => false,
            other => {
                return Err(Error::Value(format!(
                    "{who}: anneal_strategy must be 'cos' or 'linear', got '{other}'"
                )))
            }
        };
        check_positive_f(who, "div_factor", div_factor)?;
        check_positive_f(who, "final_div_factor", final_div_factor)?;
        for (i, &m) in max_lrs.iter().enumerate() {
            check_lr(who, &format!("max_lr[{i}]"), m)?;
        }
        let total = total_steps as f64;
        // Indices: lrs [initial, max, min], momentums [max, base].
        let phases = if three_phase {
            vec![
                (pct_start * total - 1.0, 0, 1, 0, 1),
                (2.0 * pct_start * total - 2.0, 1, 0, 1, 0),
                (total - 1.0, 0, 2, 0, 0),
            ]
        } else {
            vec![
                (pct_start * total - 1.0, 0, 1, 0, 1),
                (total - 1.0, 1, 2, 1, 0),
            ]
        };
        let lrs: Vec<[f64; 3]> = max_lrs
            .iter()
            .map(|&m| {
                let initial = m / div_factor;
                [initial, m, initial / final_div_factor]
            })
            .collect();
        let momentums =
            momentum.map(|(base, max)| max.iter().zip(&base).map(|(&m, &b)| [m, b]).collect());
        Ok(Self::with(Kind::OneCycle(Box::new(OneCycle {
            total_steps,
            phases,
            three_phase,
            cos,
            lrs,
            momentums,
        }))))
    }
}

fn check_positive_f(who: &str, name: &str, v: f64) -> Result<()> {
    super::check_positive(who, name, v)
}

pub(super) fn cyclic_lr(c: &Cyclic, base_lrs: &[f64], le: i64) -> Result<StepOutput> {
    let q = le as f64 / c.total_size;
    let cycle = (1.0 + q).floor();
    let x = 1.0 + q - cycle;
    let scale_factor = if x <= c.step_ratio {
        x / c.step_ratio
    } else {
        (x - 1.0) / (c.step_ratio - 1.0)
    };
    let arg = if c.scale_by_cycle { cycle } else { le as f64 };
    let scale = match &c.mode_fn {
        CyclicMode::Triangular => 1.0,
        CyclicMode::Triangular2 => 1.0 / pow(2.0, arg - 1.0),
        CyclicMode::ExpRange => pow(c.gamma, arg),
        // Arguments are whole numbers >= 0 (cycle >= 1, le >= 0). try_lr: a
        // failing user scale_fn is an error, not a NaN lr.
        CyclicMode::Custom(f) => f.try_lr(arg.max(0.0) as usize)?,
    };
    let lrs = base_lrs
        .iter()
        .zip(&c.max_lrs)
        .map(|(b, m)| b + (m - b) * scale_factor * scale)
        .collect();
    let momentum = c.momentums.as_ref().map(|(base, max)| {
        base.iter()
            .zip(max)
            .map(|(b, m)| m - (m - b) * scale_factor * scale)
            .collect()
    });
    Ok(StepOutput { lrs, momentum })
}

pub(super) fn one_cycle_lr(o: &OneCycle, le: i64) -> Result<StepOutput> {
    if le > o.total_steps {
        return Err(Error::Value(format!(
            "OneCycleLR: tried to step {le} times; the specified number of total steps is {}",
            o.total_steps
        )));
    }
    let step = le as f64;
    let mut start_step = 0.0;
    let mut lrs = Vec::with_capacity(o.lrs.len());
    let mut moms = Vec::with_capacity(o.lrs.len());
    for (g, vals) in o.lrs.iter().enumerate() {
        for (i, &(end_step, s, e, sm, em)) in o.phases.iter().enumerate() {
            if step <= end_step || i == o.phases.len() - 1 {
                let span = end_step - start_step;
                if span == 0.0 {
                    return Err(Error::Value(format!(
                        "OneCycleLR: phase {i} has zero length (pct_start * total_steps too small)"
                    )));
                }
                let pct = (step - start_step) / span;
                lrs.push(anneal(o.cos, vals[s], vals[e], pct));
                if let Some(m) = &o.momentums {
                    moms.push(anneal(o.cos, m[g][sm], m[g][em], pct));
                }
                break;
            }
            start_step = end_step;
        }
        start_step = 0.0;
    }
    Ok(StepOutput {
        lrs,
        momentum: o.momentums.as_ref().map(|_| moms),
    })
}
