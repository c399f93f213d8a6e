//! Mixed precision: a gradient scaler equal to `torch.amp.GradScaler` step by
//! step, the autocast guard, and in-place parameter casting.
//!
//! The scaler keeps its scale (float32) and growth tracker (int32) as 0-dim
//! tensors on device and updates them with `_amp_update_scale_`; gradients are
//! unscaled and checked with `_amp_foreach_non_finite_check_and_unscale_`.
//! With a fused optimizer the scale and found-inf tensors go straight into the
//! kernel, so a training step has no host synchronisation at all.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use crate::optim::{Impl, Optimizer};
use crate::shim;
use crate::tensor::{grad_of, group_by, is_float, kind_str};
use crate::{Error, Result};

/// Key of the per-optimizer state used by [`GradScaler::step_params`]
/// (floDl's form, which has no optimizer object).
pub const PARAMS_KEY: usize = usize::MAX;

/// Where an optimizer is in the current iteration (torch's `OptState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
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

/// Construction options; the defaults are torch's.
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

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            enabled: true,
            device: None,
        }
    }
}

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
}

fn check_config(growth_factor: f64, backoff_factor: f64, growth_interval: i64) -> Result<()> {
    if growth_factor.is_nan() || growth_factor <= 1.0 {
        return Err(Error::Value(format!(
            "GradScaler: growth_factor must be > 1.0, got {growth_factor}"
        )));
    }
    if !(backoff_factor > 0.0 && backoff_factor < 1.0) {
        return Err(Error::Value(format!(
            "GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}"
        )));
    }
    if growth_interval < 1 {
        return Err(Error::Value(format!(
            "GradScaler: growth_interval must be >= 1, got {growth_interval}"
        )));
    }
    Ok(())
}

/// The per-device copy of `t` (the tensor itself on its own device).
fn replica(copies: &mut Vec<(Device, Tensor)>, master: &Tensor, d: Device) -> Result<Tensor> {
    if let Some((_, t)) = copies.iter().find(|(cd, _)| *cd == d) {
        return Ok(t.shallow_clone());
    }
    let t = if master.device() == d {
        master.shallow_clone()
    } else {
        master.f_to_device(d)?
    };
    copies.push((d, t.shallow_clone()));
    Ok(t)
}

/// Runs `_amp_foreach_non_finite_check_and_unscale_` over the gradients of
/// `params`, grouped by (device, dtype), with one found-inf flag per device
/// (`found_inf` and `inv_scale` are copied to each device once). The
/// GradScaler unscales with it; the engine checks with a scale of 1.
pub fn unscale_grads(
    params: &[Tensor],
    inv_scale: &Tensor,
    found_inf: &Tensor,
    allow_fp16: bool,
) -> Result<Vec<(Device, Tensor)>> {
    let _guard = tch::no_grad_guard();
    let mut keyed = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let Some(g) = grad_of(p) else { continue };
        let kind = g.f_kind()?;
        if !allow_fp16 && kind == Kind::Half {
            return Err(Error::Value(format!(
                "GradScaler: attempting to unscale FP16 gradients (params[{i}]); \
                 keep the master parameters in float32"
            )));
        }
        if !is_float(kind) {
            return Err(Error::DType(format!(
                "GradScaler: params[{i}] has a {} gradient; expected floating point",
                kind_str(kind)
            )));
        }
        keyed.push(((g.device(), kind), g));
    }
    let (mut infs, mut invs) = (Vec::new(), Vec::new());
    for ((d, _), grads) in group_by(keyed) {
        let fi = replica(&mut infs, found_inf, d)?;
        let inv = replica(&mut invs, inv_scale, d)?;
        let refs: Vec<&Tensor> = grads.iter().collect();
        shim::amp_non_finite_check_and_unscale_(&refs, &fi, &inv)?;
    }
    Ok(infs)
}

impl GradScaler {
    pub fn new(cfg: ScalerConfig) -> Result<Self> {
        if cfg.enabled {
            check_config(cfg.growth_factor, cfg.backoff_factor, cfg.growth_interval)?;
            if !(cfg.init_scale.is_finite() && cfg.init_scale > 0.0) {
                return Err(Error::Value(format!(
                    "GradScaler: init_scale must be finite and > 0, got {}",
                    cfg.init_scale
                )));
            }
        }
        let mut s = GradScaler {
            enabled: cfg.enabled,
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
        if let (true, Some(d)) = (cfg.enabled, cfg.device) {
            s.lazy_init(d)?;
        }
        Ok(s)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
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

    /// Scales several tensors; the scale is copied once per device.
    pub fn scale_many(&mut self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        if !self.enabled {
            return Ok(ts.iter().map(|t| t.shallow_clone()).collect());
        }
        let Some(first) = ts.first() else {
            return Ok(Vec::new());
        };
        self.lazy_init(first.device())?;
        let master = self.scale_tensor("scale")?.shallow_clone();
        let mut copies = Vec::new();
        ts.iter()
            .map(|t| Ok(t.f_mul(&replica(&mut copies, &master, t.device())?)?))
            .collect()
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
        if !self.enabled {
            opt.step()?;
            return Ok(true);
        }
        if opt.implementation() == Impl::Fused {
            self.step_fused(key, opt)?;
            return Ok(true);
        }
        let params = all_params(opt);
        Ok(self.step_with(key, &params, || opt.step())?.is_some())
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

    /// The stage of optimizer `key` in this iteration.
    pub fn stage(&self, key: usize) -> Stage {
        self.per_opt.get(&key).map_or(Stage::Ready, |s| s.stage)
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
        check_config(s.growth_factor, s.backoff_factor, s.growth_interval)?;
        if !(s.scale.is_finite() && s.scale > 0.0) {
            return Err(Error::Value(format!(
                "GradScaler.load_state_dict: scale must be finite and > 0, got {}",
                s.scale
            )));
        }
        if s.growth_tracker < 0 {
            return Err(Error::Value(format!(
                "GradScaler.load_state_dict: _growth_tracker must be >= 0, got {}",
                s.growth_tracker
            )));
        }
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

/// Every parameter of every group.
pub fn all_params(opt: &dyn Optimizer) -> Vec<Tensor> {
    (0..opt.num_groups())
        .flat_map(|i| opt.group_params(i))
        .collect()
}

/// The sum of per-device found-inf flags, on the first one's device.
fn sum_found_inf(infs: &[(Device, Tensor)]) -> Result<Option<Tensor>> {
    let Some((d, first)) = infs.first() else {
        return Ok(None);
    };
    let mut total = first.shallow_clone();
    for (_, t) in &infs[1..] {
        total = total.f_add(&t.f_to_device(*d)?)?;
    }
    Ok(Some(total))
}

/// Device types autocast knows here (the `c10::DeviceType` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutocastDevice {
    Cpu,
    Cuda,
}

impl AutocastDevice {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "cpu" => Ok(AutocastDevice::Cpu),
            "cuda" => Ok(AutocastDevice::Cuda),
            _ => Err(Error::Value(format!(
                "autocast: device_type must be 'cpu' or 'cuda', got '{name}'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AutocastDevice::Cpu => "cpu",
            AutocastDevice::Cuda => "cuda",
        }
    }

    /// CUDA when one is usable, else the CPU.
    pub fn default_here() -> Self {
        if tch::Cuda::is_available() {
            AutocastDevice::Cuda
        } else {
            AutocastDevice::Cpu
        }
    }

    fn code(self) -> i32 {
        match self {
            AutocastDevice::Cpu => 0,
            AutocastDevice::Cuda => 1,
        }
    }
}

/// c10::ScalarType codes of the dtypes autocast can run in.
fn scalar_type(k: Kind) -> Option<i32> {
    match k {
        Kind::Half => Some(5),
        Kind::Float => Some(6),
        Kind::Double => Some(7),
        Kind::BFloat16 => Some(15),
        _ => None,
    }
}

fn kind_from_scalar_type(c: i32) -> Option<Kind> {
    match c {
        5 => Some(Kind::Half),
        6 => Some(Kind::Float),
        7 => Some(Kind::Double),
        15 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// Whether autocast is on for `device` in this thread.
pub fn is_autocast_enabled(device: AutocastDevice) -> Result<bool> {
    Ok(shim::autocast_get(device.code())?.0)
}

/// The dtype autocast runs in for `device` in this thread.
pub fn autocast_dtype(device: AutocastDevice) -> Result<Kind> {
    let code = shim::autocast_get(device.code())?.1;
    kind_from_scalar_type(code)
        .ok_or_else(|| Error::DType(format!("autocast: unexpected dtype code {code}")))
}

/// RAII autocast region, as `torch.autocast.__enter__/__exit__`: saves this
/// thread's flag and dtype for the device type, sets them, increments the
/// nesting; on drop decrements it (clearing the cast cache at depth 0) and
/// restores what was saved. Autocast state is thread-local: drop the guard
/// on the thread that made it.
pub struct AutocastGuard {
    device: AutocastDevice,
    prev_enabled: bool,
    prev_dtype: i32,
}

impl AutocastGuard {
    /// Enables autocast in `dtype` (float16 or bfloat16) for `device`;
    /// `enabled = false` makes a region with autocast off (nested opt-out).
    pub fn new(device: AutocastDevice, dtype: Kind, enabled: bool) -> Result<Self> {
        if !matches!(dtype, Kind::Half | Kind::BFloat16) {
            return Err(Error::Value(format!(
                "autocast: dtype must be float16 or bfloat16, got {}",
                kind_str(dtype)
            )));
        }
        if device == AutocastDevice::Cuda && !tch::Cuda::is_available() {
            return Err(Error::Value(
                "autocast: device_type 'cuda' but CUDA is not available".into(),
            ));
        }
        let code = scalar_type(dtype).ok_or_else(|| {
            Error::DType(format!("autocast: unsupported dtype {}", kind_str(dtype)))
        })?;
        let (prev_enabled, prev_dtype) = shim::autocast_get(device.code())?;
        shim::autocast_set(device.code(), enabled, code)?;
        if let Err(e) = shim::autocast_increment_nesting() {
            let _ = shim::autocast_set(device.code(), prev_enabled, prev_dtype);
            return Err(e);
        }
        Ok(AutocastGuard {
            device,
            prev_enabled,
            prev_dtype,
        })
    }

    pub fn device(&self) -> AutocastDevice {
        self.device
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // Errors cannot propagate from drop; these calls only touch
        // thread-local flags and do not fail in practice.
        if let Ok(0) = shim::autocast_decrement_nesting() {
            let _ = shim::autocast_clear_cache();
        }
        let _ = shim::autocast_set(self.device.code(), self.prev_enabled, self.prev_dtype);
    }
}

/// Runs `f` with autocast on in `dtype` for `device`.
pub fn autocast<T>(device: AutocastDevice, dtype: Kind, f: impl FnOnce() -> T) -> Result<T> {
    let _guard = AutocastGuard::new(device, dtype, true)?;
    Ok(f())
}

/// Casts parameters to `dtype` in place, keeping each tensor's identity
/// (`p.data = p.data.to(dtype)`), and their gradients too, as
/// `Module.to(dtype)` does. Parameters already in `dtype` are left alone.
pub fn cast_parameters(params: &[Tensor], dtype: Kind) -> Result<()> {
    if !is_float(dtype) {
        return Err(Error::DType(format!(
            "cast_parameters: dtype must be floating point, got {}",
            kind_str(dtype)
        )));
    }
    for (i, p) in params.iter().enumerate() {
        let k = p.f_kind()?;
        if !is_float(k) {
            return Err(Error::DType(format!(
                "cast_parameters: params[{i}] is {}, expected a floating-point tensor",
                kind_str(k)
            )));
        }
    }
    let _guard = tch::no_grad_guard();
    for p in params {
        if p.f_kind()? == dtype {
            continue;
        }
        let data = p.f_detach()?.f_to_kind(dtype)?;
        let mut h = p.shallow_clone();
        h.f_set_data(&data)?;
        if let Some(g) = grad_of(p) {
            let gd = g.f_to_kind(dtype)?;
            let mut gh = g.shallow_clone();
            gh.f_set_data(&gd)?;
        }
    }
    Ok(())
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

    #[test]
    fn autocast_guard_restores() {
        let dev = AutocastDevice::Cpu;
        let before = is_autocast_enabled(dev).unwrap();
        let dtype_before = autocast_dtype(dev).unwrap();
        {
            let _g = AutocastGuard::new(dev, Kind::Half, true).unwrap();
            assert!(is_autocast_enabled(dev).unwrap());
            assert_eq!(autocast_dtype(dev).unwrap(), Kind::Half);
            {
                let _off = AutocastGuard::new(dev, Kind::BFloat16, false).unwrap();
                assert!(!is_autocast_enabled(dev).unwrap());
            }
            assert_eq!(autocast_dtype(dev).unwrap(), Kind::Half);
            assert!(is_autocast_enabled(dev).unwrap());
        }
        assert_eq!(is_autocast_enabled(dev).unwrap(), before);
        assert_eq!(autocast_dtype(dev).unwrap(), dtype_before);
        assert!(AutocastGuard::new(dev, Kind::Float, true).is_err());
    }

    #[test]
    fn autocast_mm_runs_in_bf16() {
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        let y = autocast(AutocastDevice::Cpu, Kind::BFloat16, || a.mm(&a)).unwrap();
        assert_eq!(y.kind(), Kind::BFloat16);
        assert_eq!(a.mm(&a).kind(), Kind::Float);
    }

    #[test]
    fn cast_keeps_identity() {
        let p = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let q = p.shallow_clone();
        cast_parameters(&[p], Kind::Double).unwrap();
        assert_eq!(q.kind(), Kind::Double);
        assert!(q.requires_grad());
    }
}
