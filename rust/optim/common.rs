//! Pieces shared by the Adam family: gradient preparation (maximize, L2 or
//! decoupled weight decay) and the first/second moment updates, in both the
//! foreach and per-tensor forms, op for op as torch.optim writes them.

use tch::{Device, Kind, Tensor};

use super::driver::{handles, refs};
use crate::{shim, Result};

/// How weight decay applies.
#[derive(Clone, Copy)]
pub enum Decay {
    None,
    /// grad += wd·p (torch's default).
    L2(f64),
    /// p *= 1 − lr·wd (AdamW style).
    Decoupled {
        lr: f64,
        wd: f64,
    },
}

impl Decay {
    pub fn new(wd: f64, decoupled: bool, lr: f64) -> Self {
        if wd == 0.0 {
            Decay::None
        } else if decoupled {
            Decay::Decoupled { lr, wd }
        } else {
            Decay::L2(wd)
        }
    }
}

/// Foreach: the gradients to use (never the `.grad` tensors themselves when
/// they will be modified), after maximize and weight decay.
pub fn prep_grads(
    params: &[Tensor],
    grads: &[Tensor],
    maximize: bool,
    decay: Decay,
) -> Result<Vec<Tensor>> {
    let p = refs(params);
    let mut g = if maximize {
        shim::foreach_neg(&refs(grads))?
    } else {
        handles(grads)
    };
    match decay {
        Decay::None => {}
        Decay::Decoupled { lr, wd } => shim::foreach_mul_scalar_(&p, 1.0 - lr * wd)?,
        Decay::L2(wd) if maximize => shim::foreach_add_list_(&refs(&g), &p, wd)?,
        Decay::L2(wd) => g = shim::foreach_add_list(&refs(&g), &p, wd)?,
    }
    Ok(g)
}

/// Foreach: m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g².
pub fn moments(m: &[Tensor], v: &[Tensor], g: &[Tensor], b1: f64, b2: f64) -> Result<()> {
    let g = refs(g);
    shim::foreach_lerp_(&refs(m), &g, 1.0 - b1)?;
    shim::foreach_mul_scalar_(&refs(v), b2)?;
    shim::foreach_addcmul_(&refs(v), &g, &g, 1.0 - b2)
}

/// Per tensor: the gradient after maximize and weight decay.
pub fn prep_grad(p: &Tensor, g: &Tensor, maximize: bool, decay: Decay) -> Result<Tensor> {
    let g = if maximize {
        g.f_neg()?
    } else {
        g.shallow_clone()
    };
    Ok(match decay {
        Decay::None => g,
        Decay::L2(wd) => add_alpha(&g, p, wd)?,
        Decay::Decoupled { lr, wd } => {
            mul_(p, 1.0 - lr * wd)?;
            g
        }
    })
}

/// Per tensor: the moment updates.
pub fn moment(m: &Tensor, v: &Tensor, g: &Tensor, b1: f64, b2: f64) -> Result<()> {
    let _ = m.shallow_clone().f_lerp_(g, 1.0 - b1)?;
    mul_(v, b2)?;
    addcmul_(v, g, g, 1.0 - b2)
}

/// `t.mul_(x)` as torch.optim's per-tensor loops write it (a Python float:
/// `mul_.Tensor` with a CPU scalar, read in the compute type). tch's
/// `mul_scalar_` (`mul_.Scalar`, like `_foreach_mul_`) first rounds `x` to
/// the tensor's dtype: for bfloat16, 0.9 becomes 0.8984375 and 0.999
/// becomes 1.0, so the per-tensor paths would drift from torch's.
pub fn mul_(t: &Tensor, x: f64) -> Result<()> {
    let x = Tensor::f_scalar_tensor(x, (Kind::Double, Device::Cpu))?;
    let _ = t.shallow_clone().f_mul_(&x)?;
    Ok(())
}

/// `s.addcmul_(t1, t2, value=v)` for one tensor (tch's lacks `value`; the
/// one-element foreach runs the same per-tensor kernel, same rounding).
pub fn addcmul_(s: &Tensor, t1: &Tensor, t2: &Tensor, v: f64) -> Result<()> {
    shim::foreach_addcmul_(&[s], &[t1], &[t2], v)
}

/// `s.addcdiv_(t1, t2, value=v)` for one tensor.
pub fn addcdiv_(s: &Tensor, t1: &Tensor, t2: &Tensor, v: f64) -> Result<()> {
    shim::foreach_addcdiv_(&[s], &[t1], &[t2], v)
}

/// `g.add(p, alpha=a)`: torch fuses the multiply-add (FMA on CPU), so a
/// separate multiply then add would round differently.
pub fn add_alpha(g: &Tensor, p: &Tensor, alpha: f64) -> Result<Tensor> {
    let out = crate::tensor::deep_copy(g)?;
    add_(&out, p, alpha)?;
    Ok(out)
}

/// `s.add_(t, alpha=a)` for one tensor.
pub fn add_(s: &Tensor, t: &Tensor, alpha: f64) -> Result<()> {
    shim::foreach_add_list_(&[s], &[t], alpha)
}

/// Increments every step counter by one and returns the new host values.
pub fn bump_steps(steps: &[Tensor]) -> Result<Vec<f64>> {
    shim::foreach_add_scalar_(&refs(steps), 1.0)?;
    steps.iter().map(|t| Ok(t.f_double_value(&[])?)).collect()
}
