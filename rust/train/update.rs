//! The optimizer half of a step, shared by the engine and floDl's
//! `Graph::step`: unscale → non-finite check → clip → lr → optimizer →
//! scaler update. It decides nothing about counters; callers own those.

use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

use super::options::TrainerOptions;
use crate::amp::{all_params, unscale_grads, GradScaler};
use crate::clip::{clip_grad_norm, clip_grad_value};
use crate::optim::Optimizer;
use crate::tensor::grad_of;
use crate::{Error, Result};

/// How an update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The optimizer ran (a GradScaler may still have skipped on device).
    Stepped,
    /// A gradient was inf/NaN: nothing was touched.
    NonFinite,
}

pub(crate) fn lock<'a, T: ?Sized>(
    m: &'a Mutex<T>,
    what: &str,
) -> Result<std::sync::MutexGuard<'a, T>> {
    m.lock().map_err(|_| {
        Error::Internal(format!(
            "the {what} is unusable: an earlier step failed while holding it"
        ))
    })
}

/// True when any gradient of `params` holds an inf or NaN. CPU gradients
/// are checked on the host by the shim (contiguous float32/float64: a
/// read-only scan, one pass); device ones go through the GradScaler's check
/// with a scale of exactly 1 (values unchanged), one host read per device.
pub fn grads_nonfinite(params: &[Tensor]) -> Result<bool> {
    let (mut host, mut rest) = (Vec::new(), Vec::new());
    for p in params {
        let Some(g) = grad_of(p) else { continue };
        if g.device() == Device::Cpu {
            host.push(g);
        } else {
            rest.push(p.shallow_clone());
        }
    }
    if crate::shim::cpu_any_nonfinite(&host.iter().collect::<Vec<_>>())? {
        return Ok(true);
    }
    if rest.is_empty() {
        return Ok(false);
    }
    let found = Tensor::f_zeros([], (Kind::Float, Device::Cpu))?;
    let one = Tensor::f_ones([], (Kind::Float, Device::Cpu))?;
    for (_, flag) in unscale_grads(&rest, &one, &found, true)? {
        if flag.f_double_value(&[])? != 0.0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The Trainer's clipping of the gradients on `params`: by total norm, then
/// by value (eager and captured steps alike).
pub(crate) fn clip(params: &[Tensor], opts: &TrainerOptions) -> Result<()> {
    if let Some(max) = opts.clip_grad_norm {
        let _norm = clip_grad_norm(params, max, 2.0)?;
    }
    if let Some(v) = opts.clip_grad_value {
        clip_grad_value(params, v)?;
    }
    Ok(())
}

/// Runs the update on `opt` with the gradients now on `params`. `check`
/// asks for the non-finite check (skipped with a GradScaler, whose own
/// found-inf decides without a host sync).
pub fn apply(
    opt: &mut dyn Optimizer,
    params: &[Tensor],
    opts: &TrainerOptions,
    lr: Option<f64>,
    check: bool,
) -> Result<Outcome> {
    let clipping = opts.clip_grad_norm.is_some() || opts.clip_grad_value.is_some();
    if let Some((scaler, _)) = &opts.scaler {
        let device = params.first().map_or(tch::Device::Cpu, |p| p.device());
        lock(scaler, "GradScaler")?.ensure_scale(device)?;
    }
    match &opts.scaler {
        Some((scaler, key)) if clipping => {
            // Clip the true gradients: unscale first (torch's recipe).
            lock(scaler, "GradScaler")?.unscale_(*key, &all_params(&*opt))?;
        }
        None if check && grads_nonfinite(params)? => return Ok(Outcome::NonFinite),
        _ => {}
    }
    clip(params, opts)?;
    if let Some(lr) = lr {
        opt.set_lr(lr)?;
    }
    match &opts.scaler {
        Some((scaler, key)) => {
            let mut sc: std::sync::MutexGuard<'_, GradScaler> = lock(scaler, "GradScaler")?;
            sc.step(*key, opt)?;
            sc.update()?;
        }
        None => opt.step()?,
    }
    Ok(Outcome::Stepped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_an_internal_error() {
        let m = std::sync::Arc::new(Mutex::new(0u8));
        let held = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = held.lock();
            panic!("poisons the lock");
        })
        .join();
        let got = lock(&m, "optimizer").map(|_| ());
        match got {
            Err(Error::Internal(msg)) => assert!(msg.contains("optimizer is unusable"), "{msg}"),
            other => panic!("expected an internal error, got {other:?}"),
        }
    }
}
