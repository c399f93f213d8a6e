//! `torch.optim.lr_scheduler.ReduceLROnPlateau`, operation by operation.

use super::state::{Loader, State, Val};
use super::torch::PerGroup;
use super::{check_at_least, check_lr};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    pub max_mode: bool,
    pub factor: f64,
    pub patience: i64,
    pub threshold: f64,
    pub rel: bool,
    pub cooldown: i64,
    pub min_lrs: Vec<f64>,
    /// The scalar min_lr given, if one was (then it extends to new groups).
    pub default_min_lr: Option<f64>,
    pub eps: f64,
    pub last_epoch: i64,
    pub best: f64,
    pub num_bad_epochs: i64,
    pub cooldown_counter: i64,
    pub last_lr: Vec<f64>,
}

impl ReduceLROnPlateau {
    /// `min_lr`: one number for every group (the default, 0, included), or
    /// one per group.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: &str,
        factor: f64,
        patience: i64,
        threshold: f64,
        threshold_mode: &str,
        cooldown: i64,
        min_lr: Option<PerGroup>,
        eps: f64,
        current: &[f64],
    ) -> Result<Self> {
        let who = "ReduceLROnPlateau";
        let (min_lrs, default_min_lr) = match min_lr.unwrap_or(PerGroup::One(0.0)) {
            PerGroup::One(v) => (vec![v; current.len()], Some(v)),
            PerGroup::Each(v) => (v, None),
        };
        let max_mode = match mode {
            "min" => false,
            "max" => true,
            m => {
                return Err(Error::Value(format!(
                    "{who}: mode must be 'min' or 'max', got '{m}'"
                )))
            }
        };
        let rel = match threshold_mode {
            "rel" => true,
            "abs" => false,
            m => {
                return Err(Error::Value(format!(
                    "{who}: threshold_mode must be 'rel' or 'abs', got '{m}'"
                )))
            }
        };
        if !(0.0..1.0).contains(&factor) {
            return Err(Error::Value(format!(
                "{who}: factor must be in [0, 1), got {factor}"
            )));
        }
        check_at_least(who, "patience", patience, 0)?;
        check_at_least(who, "cooldown", cooldown, 0)?;
        super::check_finite(who, "threshold", threshold)?;
        check_lr(who, "eps", eps)?;
        if min_lrs.len() != current.len() {
            return Err(Error::Value(format!(
                "{who}: expected {} min_lrs, got {}",
                current.len(),
                min_lrs.len()
            )));
        }
        for (i, &m) in min_lrs.iter().enumerate() {
            check_lr(who, &format!("min_lr[{i}]"), m)?;
        }
        Ok(Self {
            max_mode,
            factor,
            patience,
            threshold,
            rel,
            cooldown,
            min_lrs,
            default_min_lr,
            eps,
            last_epoch: 0,
            best: Self::worse(max_mode),
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_lr: current.to_vec(),
        })
    }

    fn worse(max_mode: bool) -> f64 {
        if max_mode {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }

    fn is_better(&self, a: f64, best: f64) -> bool {
        match (self.max_mode, self.rel) {
            (false, true) => a < best * (1.0 - self.threshold),
            (false, false) => a < best - self.threshold,
            (true, true) => a > best * (self.threshold + 1.0),
            (true, false) => a > best + self.threshold,
        }
    }

    /// One `step(metrics)`: returns the new lr of each group (unchanged
    /// groups keep their current value).
    pub fn step(&mut self, metric: f64, current: &[f64], epoch: Option<i64>) -> Result<Vec<f64>> {
        self.last_epoch = epoch.unwrap_or(self.last_epoch + 1);
        if self.is_better(metric, self.best) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        let mut lrs = current.to_vec();
        if self.num_bad_epochs > self.patience {
            if self.min_lrs.len() != current.len() {
                match self.default_min_lr {
                    Some(m) => self.min_lrs = vec![m; current.len()],
                    None => {
                        return Err(Error::Value(format!(
                            "ReduceLROnPlateau: the optimizer has {} param groups but {} \
                             min_lrs were given",
                            current.len(),
                            self.min_lrs.len()
                        )))
                    }
                }
            }
            for (lr, min) in lrs.iter_mut().zip(&self.min_lrs) {
                let new = (*lr * self.factor).max(*min);
                if *lr - new > self.eps {
                    *lr = new;
                }
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0;
        }
        self.last_lr = lrs.clone();
        Ok(lrs)
    }

    pub fn in_cooldown(&self) -> bool {
        self.cooldown_counter > 0
    }

    pub fn state(&self) -> State {
        let f = |k: &str, v: f64| (k.to_string(), Val::Float(v));
        let i = |k: &str, v: i64| (k.to_string(), Val::Int(v));
        let s = |k: &str, v: &str| (k.to_string(), Val::Str(v.to_string()));
        vec![
            f("factor", self.factor),
            ("min_lrs".into(), Val::Floats(self.min_lrs.clone())),
            (
                "default_min_lr".into(),
                self.default_min_lr.map_or(Val::None, Val::Float),
            ),
            i("patience", self.patience),
            i("cooldown", self.cooldown),
            f("eps", self.eps),
            i("last_epoch", self.last_epoch),
            ("_last_lr".into(), Val::Floats(self.last_lr.clone())),
            s("mode", if self.max_mode { "max" } else { "min" }),
            f("threshold", self.threshold),
            s("threshold_mode", if self.rel { "rel" } else { "abs" }),
            f("mode_worse", Self::worse(self.max_mode)),
            f("best", self.best),
            i("cooldown_counter", self.cooldown_counter),
            i("num_bad_epochs", self.num_bad_epochs),
        ]
    }

    pub fn load_state(&mut self, state: &State) -> Result<()> {
        let l = Loader::new("ReduceLROnPlateau", state);
        let mut n = self.clone();
        n.factor = l.f64("factor")?;
        n.min_lrs = l.f64s("min_lrs")?;
        n.default_min_lr = l.opt_f64("default_min_lr")?;
        n.patience = l.i64("patience")?;
        n.cooldown = l.i64("cooldown")?;
        n.eps = l.f64("eps")?;
        n.last_epoch = l.i64("last_epoch")?;
        n.last_lr = l.f64s_or("_last_lr", &self.last_lr)?;
        n.max_mode = match l.str("mode")?.as_str() {
            "min" => false,
            "max" => true,
            m => {
                return Err(Error::Value(format!(
                    "ReduceLROnPlateau: unknown mode '{m}'"
                )))
            }
        };
        n.threshold = l.f64("threshold")?;
        n.rel = match l.str("threshold_mode")?.as_str() {
            "rel" => true,
            "abs" => false,
            m => {
                return Err(Error::Value(format!(
                    "ReduceLROnPlateau: unknown threshold_mode '{m}'"
                )))
            }
        };
        n.best = l.f64("best")?;
        n.cooldown_counter = l.i64("cooldown_counter")?;
        n.num_bad_epochs = l.i64("num_bad_epochs")?;
        *self = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_after_patience_with_cooldown() {
        let mut p = ReduceLROnPlateau::new(
            "min",
            0.5,
            1,
            0.0,
            "abs",
            1,
            Some(PerGroup::One(0.0)),
            0.0,
            &[1.0],
        )
        .unwrap();
        let mut lr = vec![1.0];
        let mut seen = vec![];
        for m in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0] {
            lr = p.step(m, &lr, None).unwrap();
            seen.push(lr[0]);
        }
        assert_eq!(seen, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
        assert!(ReduceLROnPlateau::new("up", 0.5, 1, 0.0, "abs", 0, None, 0.0, &[1.0]).is_err());
        assert!(ReduceLROnPlateau::new("min", 1.0, 1, 0.0, "abs", 0, None, 0.0, &[1.0]).is_err());
    }
}
