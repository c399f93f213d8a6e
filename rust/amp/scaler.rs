//! The gradient scaler, numerically `torch.amp.GradScaler`.
//!
//! The scaler keeps its scale (float32) and growth tracker (int32) as 0-dim
//! tensors on device and updates them with `_amp_update_scale_`; gradients are
//! unscaled and checked with `_amp_foreach_non_finite_check_and_unscale_`.
//! With a fused optimizer the scale and found-inf tensors go straight into the
//! kernel, so a training step has no host synchronisation at all.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tch::{Device, Kind, Tensor};

use super::unscale::{all_params, sum_found_inf, unscale_grads};
use crate::optim::{Impl, Optimizer};
use crate::shim;
use crate::{Error, Result};

/// Key of the per-optimizer state used by [`GradScaler::step_params`]
/// (floDl's form, which has no optimizer object).
pub const PARAMS_KEY: usize = usize::MAX;

/// Where an optimizer is in the current iteration (torch's `OptState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Ready,
    Unscaled,
    Stepped,
}

struct OptState {
    stage: Stage,
    /// One found-inf flag (0-dim float32) per device the gradients live on.
    found_inf: Vec<(Device, Tensor)>,
}

impl Default for OptState {
    fn default() -> Self {
        OptState {
            stage: Stage::Ready,
            found_inf: Vec::new(),
        }
    }
}

/// Construction options.
#[derive(Clone, Copy, Debug)]
pub struct ScalerConfig {
    pub init_scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: i64,
    pub enabled: bool,
    /// Where the scale lives; `None`: the device of the first scaled tensor.
    pub device: Option<Device>,
}

impl ScalerConfig {
    /// The one table of defaults (torch's, but `device`): the binding's
    /// signature, `ferrotorch.GradScaler`'s and the stub's read it.
    pub const DEFAULTS: ScalerConfig = ScalerConfig {
        init_scale: 65536.0,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2000,
        enabled: true,
        device: None,
    };
}

impl Default for ScalerConfig {
    fn default() -> Self {
        Self::DEFAULTS
    }
}

/// torch's warning for a scaler asked to live on CUDA where there is none;
/// it then runs disabled, as torch's does.
pub const NO_CUDA_WARNING: &str = "GradScaler is enabled, but CUDA is not available.  Disabling.";

/// torch.amp.GradScaler's state dict (its keys, its types).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerState {
    pub scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: i64,
    pub growth_tracker: i64,
}

/// Dynamic loss scaling, numerically `torch.amp.GradScaler`.
///
/// Optimizers are told apart by a caller-chosen `usize` key (the bindings use
/// the Python object's id), as torch keys them by `id(optimizer)`.
pub struct GradScaler {
    enabled: bool,
    init_scale: f64,
    growth_factor: f64,
    backoff_factor: f64,
    growth_interval: i64,
    init_growth_tracker: i64,
    scale: Option<Tensor>,
    growth_tracker: Option<Tensor>,
    per_opt: HashMap<usize, OptState>,
    /// The found-inf sum (0-dim float, on device) of the last step: kept so a
    /// caller can ask whether it was skipped without a sync per step.
    last_found_inf: Option<Tensor>,
    warning: Option<&'static str>,
}

impl ScalerState {
    /// Every option's rule, checked here only (construction and
    /// `load_state_dict`); `scale_key` is the name the caller gave the scale.
    fn check(&self, what: &str, scale_key: &str) -> Result<()> {
        let rules = [
            (
                self.scale.is_finite() && self.scale > 0.0,
                scale_key,
                "finite and > 0",
                self.scale.to_string(),
            ),
            (
                self.growth_factor > 1.0,
                "growth_factor",
                "> 1.0",
                self.growth_factor.to_string(),
            ),
            (
                self.backoff_factor > 0.0 && self.backoff_factor < 1.0,
                "backoff_factor",
                "in (0, 1)",
                self.backoff_factor.to_string(),
            ),
            (
                self.growth_interval >= 1,
                "growth_interval",
                ">= 1",
                self.growth_interval.to_string(),
            ),
            (
                self.growth_tracker >= 0,
                "_growth_tracker",
                ">= 0",
                self.growth_tracker.to_string(),
            ),
        ];
        match rules.into_iter().find(|r| !r.0) {
            Some((_, key, rule, got)) => Err(Error::Value(format!(
                "{what}: {key} must be {rule}, got {got}"
            ))),
            None => Ok(()),
        }
    }
}

/// How `scaler.step(optimizer, ...)` runs (torch's `GradScaler.step`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPath {
    /// Disabled: the optimizer's own step and nothing else.
    Plain,
    /// A fused ferrotorch optimizer stepped without arguments: its kernel
    /// takes the scale and found-inf ([`GradScaler::step_fused`]).
    Fused,
    /// Unscale, read found-inf once, step unless inf ([`step_checked`]).
    Checked,
}

/// torch's non-fused `scaler.step`: unscales (unless `unscale_` ran) and
/// reads found-inf under the lock, runs `step_fn` unless a gradient was
/// inf/NaN with the lock released (it may be user code that reads the
/// scaler), then marks the optimizer stepped. `Ok(None)` when skipped.
pub fn step_checked<R>(
    scaler: &Mutex<GradScaler>,
    key: usize,
    params: &[Tensor],
    step_fn: impl FnOnce() -> Result<R>,
) -> Result<Option<R>> {
    let go = locked(scaler)?.prepare_step(key, params)?;
    let out = if go { Some(step_fn()?) } else { None };
    locked(scaler)?.mark_stepped(key);
    Ok(out)
}

fn locked(scaler: &Mutex<GradScaler>) -> Result<MutexGuard<'_, GradScaler>> {
    scaler.lock().map_err(|_| {
        Error::Internal(
            "the GradScaler is unusable: an earlier step failed while holding it".into(),
        )
    })
}

impl GradScaler {
    /// A scaler asked to live on CUDA where there is none runs disabled
    /// (see [`Self::warning`]); options are checked only when enabled, as
    /// torch does.
    pub fn new(cfg: ScalerConfig) -> Result<Self> {
        let no_cuda = cfg.enabled
            && matches!(cfg.device, Some(Device::Cuda(_)))
            && !tch::Cuda::is_available();
        let enabled = cfg.enabled && !no_cuda;
        if enabled {
            ScalerState {
                scale: cfg.init_scale,
                growth_factor: cfg.growth_factor,
                backoff_factor: cfg.backoff_factor,
                growth_interval: cfg.growth_interval,
                growth_tracker: 0,
            }
            .check("GradScaler", "init_scale")?;
        }
        let mut s = GradScaler {
            enabled,
            warning: no_cuda.then_some(NO_CUDA_WARNING),
            init_scale: cfg.init_scale,
            growth_factor: cfg.growth_factor,
            backoff_factor: cfg.backoff_factor,
            growth_interval: cfg.growth_interval,
            init_growth_tracker: 0,
            scale: None,
            growth_tracker: None,
            per_opt: HashMap::new(),
            last_found_inf: None,
        };
        if let (true, Some(d)) = (enabled, cfg.device) {
            s.lazy_init(d)?;
        }
        Ok(s)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// What the caller should warn about construction (CUDA missing).
    pub fn warning(&self) -> Option<&'static str> {
        self.warning
    }

    /// The path `step` takes: `fused` when the optimizer is a ferrotorch one
    /// with the fused implementation, `extra_args` when step gets arguments
    /// (only the checked path passes them on), `closure` when one of them
    /// is a closure, which torch refuses while enabled.
    pub fn step_path(&self, fused: bool, extra_args: bool, closure: bool) -> Result<StepPath> {
        if !self.enabled {
            return Ok(StepPath::Plain);
        }
        if closure {
            return Err(Error::Torch(
                "Closure use is not currently supported if GradScaler is enabled.".into(),
            ));
        }
        Ok(if fused && !extra_args {
            StepPath::Fused
        } else {
            StepPath::Checked
        })
    }

    /// Creates the scale and growth tracker on `d` if `scale(loss)` has not
    /// yet (from the configured or loaded values). The engine calls it before
    /// a window's update: a training state restored inside a window carries
    /// gradients scaled by the loaded scale but no `scale()` call of its own.
    pub fn ensure_scale(&mut self, d: Device) -> Result<()> {
        self.lazy_init(d)
    }

    fn lazy_init(&mut self, d: Device) -> Result<()> {
        if self.scale.is_none() {
            self.scale = Some(Tensor::f_full([], self.init_scale, (Kind::Float, d))?);
            self.growth_tracker = Some(Tensor::f_full(
                [],
                self.init_growth_tracker,
                (Kind::Int, d),
            )?);
        }
        Ok(())
    }

    fn scale_tensor(&self, what: &str) -> Result<&Tensor> {
        self.scale.as_ref().ok_or_else(|| {
            Error::Torch(format!(
                "GradScaler.{what}: no scale yet; call scale(loss) earlier in the iteration"
            ))
        })
    }

    /// The scale as a 0-dim float32 tensor on its device (no sync), once
    /// something has been scaled (or a device was given).
    pub fn scale_async(&self) -> Option<&Tensor> {
        self.scale.as_ref()
    }

    /// `t * scale` (the scale moved to `t`'s device); `t` itself when disabled.
    pub fn scale(&mut self, t: &Tensor) -> Result<Tensor> {
        if !self.enabled {
            return Ok(t.shallow_clone());
        }
        self.lazy_init(t.device())?;
        let s = self.scale_tensor("scale")?.f_to_device(t.device())?;
        Ok(t.f_mul(&s)?)
    }

    /// Divides the gradients of `params` by the scale in place and records
    /// whether any is inf/NaN, for the optimizer `key`. No host sync.
    /// Once per optimizer per iteration, before its step.
    pub fn unscale_(&mut self, key: usize, params: &[Tensor]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let scale = self.scale_tensor("unscale_")?;
        let st = self.per_opt.get(&key).map(|s| s.stage);
        match st {
            Some(Stage::Unscaled) => {
                return Err(Error::Torch(
                    "GradScaler.unscale_() has already been called on this optimizer since the last update()"
                        .into(),
                ))
            }
            Some(Stage::Stepped) => {
                return Err(Error::Torch(
                    "GradScaler.unscale_() is being called after step()".into(),
                ))
            }
            _ => {}
        }
        // torch: scale.double().reciprocal().float()
        let inv = scale
            .f_to_kind(Kind::Double)?
            .f_reciprocal()?
            .f_to_kind(Kind::Float)?;
        let found = Tensor::f_zeros([], (Kind::Float, scale.device()))?;
        let infs = unscale_grads(params, &inv, &found, false)?;
        let state = self.per_opt.entry(key).or_default();
        state.found_inf = infs;
        state.stage = Stage::Unscaled;
        Ok(())
    }

    fn check_not_stepped(&self, key: usize) -> Result<Stage> {
        let stage = self.per_opt.get(&key).map_or(Stage::Ready, |s| s.stage);
        if stage == Stage::Stepped {
            return Err(Error::Torch(
                "GradScaler.step() has already been called since the last update()".into(),
            ));
        }
        Ok(stage)
    }

    /// The non-fused path, first half: unscales if `unscale_` was not called,
    /// then reads the found-inf flags (one host sync, as torch's) and says
    /// whether the optimizer step should run. Call [`Self::mark_stepped`]
    /// afterwards, whether or not the step ran.
    pub fn prepare_step(&mut self, key: usize, params: &[Tensor]) -> Result<bool> {
        if !self.enabled {
            return Ok(true);
        }
        self.scale_tensor("step")?;
        if self.check_not_stepped(key)? == Stage::Ready {
            self.unscale_(key, params)?;
        }
        let infs = &self.per_opt.entry(key).or_default().found_inf;
        if infs.is_empty() {
            return Err(Error::Torch(
                "GradScaler.step: no inf checks were recorded for this optimizer (no parameter has a gradient)"
                    .into(),
            ));
        }
        let mut total = 0.0;
        for (_, t) in infs {
            total += t.f_double_value(&[])?;
        }
        Ok(total == 0.0)
    }

    /// Records that the optimizer `key` has (or would have) stepped.
    pub fn mark_stepped(&mut self, key: usize) {
        if self.enabled {
            let st = self.per_opt.entry(key).or_default();
            st.stage = Stage::Stepped;
            self.last_found_inf = sum_found_inf(&st.found_inf).ok().flatten();
        }
    }

    /// The last step's found-inf flag (0-dim float32 on the scale's device,
    /// nonzero when that step was skipped); reading it is the only sync.
    /// `None` before any step or when disabled.
    pub fn last_found_inf(&self) -> Option<Tensor> {
        self.last_found_inf.as_ref().map(|t| t.shallow_clone())
    }

    /// Whether the last step was skipped for inf/NaN gradients (a host sync).
    pub fn last_step_skipped(&self) -> Result<bool> {
        match &self.last_found_inf {
            Some(t) => Ok(t.f_double_value(&[])? != 0.0),
            None => Ok(false),
        }
    }

    /// torch's `scaler.step(optimizer)` for any optimizer: `step_fn` runs
    /// unless a gradient was inf/NaN; returns its result, or None if skipped.
    pub fn step_with<R>(
        &mut self,
        key: usize,
        params: &[Tensor],
        step_fn: impl FnOnce() -> Result<R>,
    ) -> Result<Option<R>> {
        if !self.enabled {
            return step_fn().map(Some);
        }
        let go = self.prepare_step(key, params)?;
        let out = if go { Some(step_fn()?) } else { None };
        self.mark_stepped(key);
        Ok(out)
    }

    /// floDl's `step(params, step_fn) -> bool`: unscales the gradients of
    /// `params`; returns false without calling `step_fn` if any is inf/NaN.
    pub fn step_params(
        &mut self,
        params: &[Tensor],
        step_fn: impl FnOnce() -> Result<()>,
    ) -> Result<bool> {
        Ok(self.step_with(PARAMS_KEY, params, step_fn)?.is_some())
    }

    /// The fused path: hands the scale and found-inf tensors to the
    /// optimizer's kernel, which unscales and skips itself on device. The
    /// flags are computed here without unscaling (as torch's
    /// `_check_inf_per_device`), unless `unscale_` already ran, in which case
    /// only found-inf is passed. No host sync.
    pub fn step_fused(&mut self, key: usize, opt: &mut dyn Optimizer) -> Result<()> {
        if !self.enabled {
            return opt.step();
        }
        if opt.implementation() != Impl::Fused {
            return Err(Error::Value(format!(
                "GradScaler.step_fused: {} uses the '{}' implementation; only fused kernels take the scale",
                opt.name(),
                opt.implementation().name()
            )));
        }
        let scale = self.scale_tensor("step")?.shallow_clone();
        let stage = self.check_not_stepped(key)?;
        if stage == Stage::Ready {
            let params = all_params(opt);
            let dummy = Tensor::f_ones([], (Kind::Float, scale.device()))?;
            let found = Tensor::f_zeros([], (Kind::Float, scale.device()))?;
            let infs = unscale_grads(&params, &dummy, &found, true)?;
            self.per_opt.entry(key).or_default().found_inf = infs;
        }
        let mut found = Tensor::f_zeros([], (Kind::Float, scale.device()))?;
        for (_, t) in &self.per_opt.entry(key).or_default().found_inf {
            found = found.f_add(&t.f_to_device(scale.device())?)?;
        }
        let grad_scale = (stage == Stage::Ready).then_some(&scale);
        opt.step_amp(grad_scale, Some(&found))?;
        self.mark_stepped(key);
        Ok(())
    }

    /// torch's `scaler.step(optimizer)` for a ferrotorch optimizer: the
    /// kernel path when it is fused, else unscale, check, step.
    /// Returns whether a step was attempted without inf (always true on the
    /// fused path, which decides on device).
    pub fn step(&mut self, key: usize, opt: &mut dyn Optimizer) -> Result<bool> {
        match self.step_path(opt.implementation() == Impl::Fused, false, false)? {
            StepPath::Plain => opt.step()?,
            StepPath::Fused => self.step_fused(key, opt)?,
            StepPath::Checked => {
                let params = all_params(opt);
                return Ok(self.step_with(key, &params, || opt.step())?.is_some());
            }
        }
        Ok(true)
    }

    /// Backs off the scale if any optimizer saw inf/NaN this iteration, grows
    /// it after `growth_interval` clean ones (`_amp_update_scale_`, on
    /// device), and resets the per-optimizer state.
    pub fn update(&mut self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let scale = self.scale_tensor("update")?.shallow_clone();
        let tracker = self.growth_tracker_tensor()?;
        let mut infs = Vec::new();
        for st in self.per_opt.values() {
            for (_, t) in &st.found_inf {
                infs.push(t.f_to_device(scale.device())?);
            }
        }
        let Some(first) = infs.first() else {
            return Err(Error::Torch(
                "GradScaler.update: no inf checks were recorded prior to update(); call step() first"
                    .into(),
            ));
        };
        let mut combined = first.shallow_clone();
        for t in &infs[1..] {
            combined = combined.f_add(t)?;
        }
        shim::amp_update_scale_(
            &scale,
            &tracker,
            &combined,
            self.growth_factor,
            self.backoff_factor,
            self.growth_interval,
        )?;
        self.per_opt.clear();
        Ok(())
    }

    /// `update(new_scale)`: sets the scale and resets the per-optimizer
    /// state; the growth tracker is left alone (as torch).
    pub fn update_to(&mut self, new_scale: &Tensor) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let scale = self.scale_tensor("update")?;
        if new_scale.numel() != 1 {
            return Err(Error::Value(format!(
                "GradScaler.update: new_scale must have one element, got shape {:?}",
                new_scale.size()
            )));
        }
        let mut s = scale.shallow_clone();
        let _guard = tch::no_grad_guard();
        s.f_copy_(&new_scale.f_reshape([])?)?;
        self.per_opt.clear();
        Ok(())
    }

    fn growth_tracker_tensor(&self) -> Result<Tensor> {
        self.growth_tracker
            .as_ref()
            .map(|t| t.shallow_clone())
            .ok_or_else(|| Error::Internal("GradScaler: no growth tracker yet".into()))
    }

    /// The current scale (a host sync once the scale exists); 1.0 if disabled.
    pub fn get_scale(&self) -> Result<f64> {
        if !self.enabled {
            return Ok(1.0);
        }
        match &self.scale {
            Some(s) => Ok(s.f_double_value(&[])?),
            None => Ok(self.init_scale),
        }
    }

    /// Consecutive unskipped steps since the last growth or backoff.
    pub fn growth_tracker(&self) -> Result<i64> {
        if !self.enabled {
            return Ok(0);
        }
        match &self.growth_tracker {
            Some(t) => Ok(t.f_int64_value(&[])?),
            None => Ok(self.init_growth_tracker),
        }
    }

    pub fn growth_factor(&self) -> f64 {
        self.growth_factor
    }
    pub fn backoff_factor(&self) -> f64 {
        self.backoff_factor
    }
    pub fn growth_interval(&self) -> i64 {
        self.growth_interval
    }

    /// `None` when disabled (torch returns an empty dict then).
    pub fn state_dict(&self) -> Result<Option<ScalerState>> {
        if !self.enabled {
            return Ok(None);
        }
        Ok(Some(ScalerState {
            scale: self.get_scale()?,
            growth_factor: self.growth_factor,
            backoff_factor: self.backoff_factor,
            growth_interval: self.growth_interval,
            growth_tracker: self.growth_tracker()?,
        }))
    }

    /// Loads a state (validated first; a no-op when disabled).
    pub fn load_state_dict(&mut self, s: ScalerState) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        s.check("GradScaler.load_state_dict", "scale")?;
        self.init_scale = s.scale;
        self.growth_factor = s.growth_factor;
        self.backoff_factor = s.backoff_factor;
        self.growth_interval = s.growth_interval;
        self.init_growth_tracker = s.growth_tracker;
        if let Some(t) = &self.scale {
            let _ = t.shallow_clone().f_fill_(s.scale)?;
        }
        if let Some(t) = &self.growth_tracker {
            let _ = t.shallow_clone().f_fill_(s.growth_tracker)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaler(scale: f64, interval: i64) -> GradScaler {
        GradScaler::new(ScalerConfig {
            init_scale: scale,
            growth_interval: interval,
            device: Some(Device::Cpu),
            ..Default::default()
        })
        .unwrap()
    }

    fn param_with_grad(g: &[f32]) -> Tensor {
        let p = Tensor::zeros([g.len() as i64], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&p * Tensor::from_slice(g)).sum(Kind::Float).backward();
        p
    }

    #[test]
    fn growth_after_interval() {
        let mut s = scaler(100.0, 3);
        s.load_state_dict(ScalerState {
            scale: 100.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 3,
            growth_tracker: 2,
        })
        .unwrap();
        let p = param_with_grad(&[1.0, 2.0]);
        assert!(s.step_params(&[p], || Ok(())).unwrap());
        s.update().unwrap();
        assert_eq!(s.get_scale().unwrap(), 200.0);
        assert_eq!(s.growth_tracker().unwrap(), 0);
    }

    #[test]
    fn backoff_and_skip_on_inf() {
        let mut s = scaler(64.0, 3);
        let p = param_with_grad(&[f32::INFINITY, 1.0]);
        let mut called = false;
        let stepped = s
            .step_params(&[p], || {
                called = true;
                Ok(())
            })
            .unwrap();
        assert!(!stepped && !called);
        s.update().unwrap();
        assert_eq!(s.get_scale().unwrap(), 32.0);
        assert_eq!(s.growth_tracker().unwrap(), 0);
    }

    #[test]
    fn unscale_twice_errors() {
        let mut s = scaler(4.0, 3);
        let p = param_with_grad(&[8.0]);
        s.unscale_(1, std::slice::from_ref(&p)).unwrap();
        assert_eq!(p.grad().double_value(&[0]), 2.0);
        assert!(s.unscale_(1, &[p]).is_err());
    }

    #[test]
    fn update_without_step_errors_and_disabled_is_passthrough() {
        let mut s = scaler(4.0, 3);
        assert!(s.update().is_err());
        let mut off = GradScaler::new(ScalerConfig {
            enabled: false,
            ..Default::default()
        })
        .unwrap();
        let t = Tensor::from_slice(&[3.0f32]);
        assert_eq!(off.scale(&t).unwrap().double_value(&[0]), 3.0);
        assert_eq!(off.get_scale().unwrap(), 1.0);
        assert!(off.update().is_ok());
        assert!(off.state_dict().unwrap().is_none());
    }

    #[test]
    fn the_step_path_is_decided_here() {
        let on = scaler(4.0, 3);
        assert_eq!(on.step_path(true, false, false).unwrap(), StepPath::Fused);
        // Arguments for the optimizer's step only pass through the checked path.
        assert_eq!(on.step_path(true, true, false).unwrap(), StepPath::Checked);
        assert_eq!(
            on.step_path(false, false, false).unwrap(),
            StepPath::Checked
        );
        assert!(
            matches!(on.step_path(false, true, true), Err(Error::Torch(m)) if m.contains("Closure"))
        );
        let off = GradScaler::new(ScalerConfig {
            enabled: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(off.step_path(true, true, true).unwrap(), StepPath::Plain);
    }

    #[test]
    fn a_cuda_scaler_without_cuda_is_disabled_with_a_warning() {
        let s = GradScaler::new(ScalerConfig {
            device: Some(Device::Cuda(0)),
            growth_factor: 0.5, // not checked once disabled, as torch
            ..Default::default()
        })
        .unwrap();
        let cuda = tch::Cuda::is_available();
        assert_eq!(s.is_enabled(), cuda);
        assert_eq!(s.warning(), (!cuda).then_some(NO_CUDA_WARNING));
    }

    #[test]
    fn step_checked_skips_on_inf_and_marks_the_step() {
        let s = Mutex::new(scaler(2.0, 3));
        let p = param_with_grad(&[f32::NAN]);
        let mut ran = false;
        let out = step_checked(&s, 7, std::slice::from_ref(&p), || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(out.is_none() && !ran);
        assert!(s.lock().unwrap().last_step_skipped().unwrap());
        assert!(step_checked(&s, 7, &[p], || Ok(())).is_err()); // already stepped
    }

    #[test]
    fn bad_config() {
        for (g, b, i) in [(1.0, 0.5, 10), (2.0, 1.0, 10), (2.0, 0.5, 0)] {
            let r = GradScaler::new(ScalerConfig {
                growth_factor: g,
                backoff_factor: b,
                growth_interval: i,
                ..Default::default()
            });
            assert!(matches!(r, Err(Error::Value(_))));
        }
    }
}
