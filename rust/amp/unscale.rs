//! The unscale and found-inf pass over gradients, shared by the GradScaler
//! and the engine's non-finite check.

use tch::{Device, Kind, Tensor};

use crate::optim::Optimizer;
use crate::shim;
use crate::tensor::{grad_of, group_by, is_float, kind_str};
use crate::{Error, Result};

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

/// Every parameter of every group.
pub fn all_params(opt: &dyn Optimizer) -> Vec<Tensor> {
    (0..opt.num_groups())
        .flat_map(|i| opt.group_params(i))
        .collect()
}

/// The sum of per-device found-inf flags, on the first one's device.
pub(super) fn sum_found_inf(infs: &[(Device, Tensor)]) -> Result<Option<Tensor>> {
    let Some((d, first)) = infs.first() else {
        return Ok(None);
    };
    let mut total = first.shallow_clone();
    for (_, t) in &infs[1..] {
        total = total.f_add(&t.f_to_device(*d)?)?;
    }
    Ok(Some(total))
}
