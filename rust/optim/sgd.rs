//! SGD with momentum, dampening, Nesterov and weight decay: torch.optim.SGD.
//! Fused: `_fused_sgd_`; foreach: torch's `_multi_tensor_sgd`; reference:
//! `_single_tensor_sgd`.

use tch::Tensor;

use super::common::{add_, add_alpha, mul_, prep_grad, prep_grads, Decay};
use super::driver::{refs, Algorithm, Amp, Bucket, State};
use super::hyper::{check_nonneg, HValue, Hyper};
use super::Impl;
use crate::shim::{self, SgdHyper};
use crate::{Error, Result};

pub struct Sgd;

struct H {
    lr: f64,
    momentum: f64,
    dampening: f64,
    wd: f64,
    nesterov: bool,
    maximize: bool,
}

fn read(h: &Hyper) -> Result<H> {
    Ok(H {
        lr: h.f("lr")?,
        momentum: h.f("momentum")?,
        dampening: h.f("dampening")?,
        wd: h.f("weight_decay")?,
        nesterov: h.b("nesterov")?,
        maximize: h.b("maximize")?,
    })
}

impl Algorithm for Sgd {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn defaults(&self) -> Hyper {
        Hyper::from_pairs(&[
            ("lr", HValue::F(1e-3)),
            ("momentum", HValue::F(0.0)),
            ("dampening", HValue::F(0.0)),
            ("weight_decay", HValue::F(0.0)),
            ("nesterov", HValue::B(false)),
            ("maximize", HValue::B(false)),
        ])
    }

    fn validate(&self, h: &Hyper) -> Result<()> {
        check_nonneg("SGD", h, "lr", "learning rate")?;
        check_nonneg("SGD", h, "momentum", "momentum value")?;
        check_nonneg("SGD", h, "weight_decay", "weight_decay value")?;
        let x = read(h)?;
        if x.nesterov && (x.momentum <= 0.0 || x.dampening != 0.0) {
            return Err(Error::Value(
                "SGD: Nesterov momentum requires a momentum and zero dampening".into(),
            ));
        }
        Ok(())
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["momentum_buffer"]
    }

    fn scalar_slots(&self) -> &'static [&'static str] {
        &[]
    }

    fn has_fused(&self) -> bool {
        true
    }

    /// torch creates the momentum buffer on the first step (a copy of the
    /// gradient), so the state starts empty.
    fn init_state(&self, _p: &Tensor, _h: &Hyper, _imp: Impl) -> Result<State> {
        Ok(vec![None])
    }

    fn step(&self, hy: &Hyper, b: &mut Bucket, imp: Impl, amp: Amp) -> Result<()> {
        let h = read(hy)?;
        match imp {
            Impl::Fused => fused(&h, b, amp),
            Impl::Foreach => foreach(&h, b),
            Impl::Reference => reference(&h, b),
        }
    }
}

fn fused(h: &H, b: &mut Bucket, amp: Amp) -> Result<()> {
    let sh = SgdHyper {
        lr: h.lr,
        momentum: h.momentum,
        dampening: h.dampening,
        weight_decay: h.wd,
        nesterov: h.nesterov,
        maximize: h.maximize,
        is_first_step: false,
    };
    if h.momentum == 0.0 {
        return shim::fused_sgd_(
            &b.params,
            &b.grads,
            &[],
            sh,
            amp.grad_scale,
            amp.found_inf,
            amp.lr,
        );
    }
    // torch's `is_first_step` (the kernel copies the gradient into the new
    // buffer) is all-or-nothing per call. Where a parameter got its first
    // gradient late, the bucket holds both kinds: one kernel call each. The
    // kernel is elementwise per tensor, so splitting the list changes no bit.
    let fresh: Vec<bool> = b.states.iter().map(|s| s[0].is_none()).collect();
    for (s, p) in b.states.iter_mut().zip(&b.params) {
        if s[0].is_none() {
            s[0] = Some(p.f_empty_like()?);
        }
    }
    let bufs = b.slot(0, "momentum_buffer")?;
    for first in [false, true] {
        let pick = |v: &[Tensor]| -> Vec<Tensor> {
            v.iter()
                .zip(&fresh)
                .filter(|(_, f)| **f == first)
                .map(|(t, _)| t.shallow_clone())
                .collect()
        };
        let params = pick(&b.params);
        if params.is_empty() {
            continue;
        }
        shim::fused_sgd_(
            &params,
            &pick(&b.grads),
            &pick(&bufs),
            SgdHyper {
                is_first_step: first,
                ..sh
            },
            amp.grad_scale,
            amp.found_inf,
            amp.lr,
        )?;
    }
    Ok(())
}

fn foreach(h: &H, b: &mut Bucket) -> Result<()> {
    let params = refs(&b.params);
    let mut grads = prep_grads(
        &b.params,
        &b.grads,
        h.maximize,
        Decay::new(h.wd, false, h.lr),
    )?;
    if h.momentum != 0.0 {
        let bufs: Vec<Tensor> = if b.states.iter().all(|s| s[0].is_some()) {
            let bufs = b.slot(0, "momentum_buffer")?;
            shim::foreach_mul_scalar_(&refs(&bufs), h.momentum)?;
            shim::foreach_add_list_(&refs(&bufs), &refs(&grads), 1.0 - h.dampening)?;
            bufs
        } else {
            let mut out = Vec::with_capacity(grads.len());
            for (s, g) in b.states.iter_mut().zip(&grads) {
                let buf = match &mut s[0] {
                    Some(buf) => {
                        // torch: buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                        mul_(buf, h.momentum)?;
                        add_(buf, g, 1.0 - h.dampening)?;
                        buf.shallow_clone()
                    }
                    None => {
                        let buf = crate::tensor::deep_copy(g)?;
                        s[0] = Some(buf.shallow_clone());
                        buf
                    }
                };
                out.push(buf);
            }
            out
        };
        if h.nesterov {
            grads = shim::foreach_add_list(&refs(&grads), &refs(&bufs), h.momentum)?;
        } else {
            grads = bufs;
        }
    }
    shim::foreach_add_list_(&params, &refs(&grads), -h.lr)
}

/// torch's `_single_tensor_sgd`, op for op: `add_(x, alpha=a)` is one fused
/// multiply-add (never a separate `x * a`), and `mul_(python float)` keeps
/// the scalar in the compute type (see `common::mul_`).
fn reference(h: &H, b: &mut Bucket) -> Result<()> {
    for (k, st) in b.states.iter_mut().enumerate() {
        let p = b.params[k].shallow_clone();
        let mut g = prep_grad(&p, &b.grads[k], h.maximize, Decay::new(h.wd, false, h.lr))?;
        if h.momentum != 0.0 {
            let buf = match &mut st[0] {
                Some(buf) => {
                    mul_(buf, h.momentum)?;
                    add_(buf, &g, 1.0 - h.dampening)?;
                    buf.shallow_clone()
                }
                None => {
                    let buf = crate::tensor::deep_copy(&g)?;
                    st[0] = Some(buf.shallow_clone());
                    buf
                }
            };
            g = if h.nesterov {
                add_alpha(&g, &buf, h.momentum)?
            } else {
                buf
            };
        }
        add_(&p, &g, -h.lr)?;
    }
    Ok(())
}
