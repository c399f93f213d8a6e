//! RMSprop: torch.optim.RMSprop (alpha, momentum, centered, weight decay).

use tch::Tensor;

use super::common::{add_, addcdiv_, addcmul_, mul_, prep_grad, prep_grads, Decay};
use super::driver::{refs, step_tensor, Algorithm, Amp, Bucket, State};
use super::hyper::{check_nonneg, HValue, Hyper};
use super::Impl;
use crate::tensor::deep_copy;
use crate::{shim, Error, Result};

pub struct RMSprop;

struct H {
    lr: f64,
    alpha: f64,
    eps: f64,
    wd: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
}

fn read(h: &Hyper) -> Result<H> {
    Ok(H {
        lr: h.f("lr")?,
        alpha: h.f("alpha")?,
        eps: h.f("eps")?,
        wd: h.f("weight_decay")?,
        momentum: h.f("momentum")?,
        centered: h.b("centered")?,
        maximize: h.b("maximize")?,
    })
}

impl Algorithm for RMSprop {
    fn name(&self) -> &'static str {
        "RMSprop"
    }

    fn defaults(&self) -> Hyper {
        Hyper::from_pairs(&[
            ("lr", HValue::F(1e-2)),
            ("alpha", HValue::F(0.99)),
            ("eps", HValue::F(1e-8)),
            ("weight_decay", HValue::F(0.0)),
            ("momentum", HValue::F(0.0)),
            ("centered", HValue::B(false)),
            ("maximize", HValue::B(false)),
        ])
    }

    fn validate(&self, h: &Hyper) -> Result<()> {
        for (k, w) in [
            ("lr", "learning rate"),
            ("eps", "epsilon value"),
            ("momentum", "momentum value"),
            ("weight_decay", "weight_decay value"),
            ("alpha", "alpha value"),
        ] {
            check_nonneg("RMSprop", h, k, w)?;
        }
        Ok(())
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["step", "square_avg", "momentum_buffer", "grad_avg"]
    }

    fn init_state(&self, p: &Tensor, h: &Hyper, imp: Impl) -> Result<State> {
        let x = read(h)?;
        Ok(vec![
            Some(step_tensor(p, imp)?),
            Some(p.f_zeros_like()?),
            if x.momentum > 0.0 {
                Some(p.f_zeros_like()?)
            } else {
                None
            },
            if x.centered {
                Some(p.f_zeros_like()?)
            } else {
                None
            },
        ])
    }

    fn step(&self, hy: &Hyper, b: &mut Bucket, imp: Impl, _amp: Amp) -> Result<()> {
        let h = read(hy)?;
        let steps = b.slot(0, "step")?;
        let sq = b.slot(1, "square_avg")?;
        match imp {
            Impl::Fused => Err(Error::Value("RMSprop has no fused kernel".into())),
            Impl::Foreach => {
                let params = refs(&b.params);
                shim::foreach_add_scalar_(&refs(&steps), 1.0)?;
                let grads = prep_grads(
                    &b.params,
                    &b.grads,
                    h.maximize,
                    Decay::new(h.wd, false, h.lr),
                )?;
                let g = refs(&grads);
                shim::foreach_mul_scalar_(&refs(&sq), h.alpha)?;
                shim::foreach_addcmul_(&refs(&sq), &g, &g, 1.0 - h.alpha)?;
                let avg = if h.centered {
                    let ga = b.slot(3, "grad_avg")?;
                    shim::foreach_lerp_(&refs(&ga), &g, 1.0 - h.alpha)?;
                    let avg = shim::foreach_addcmul(&refs(&sq), &refs(&ga), &refs(&ga), -1.0)?;
                    shim::foreach_sqrt_(&refs(&avg))?;
                    avg
                } else {
                    shim::foreach_sqrt(&refs(&sq))?
                };
                shim::foreach_add_scalar_(&refs(&avg), h.eps)?;
                if h.momentum > 0.0 {
                    let bufs = b.slot(2, "momentum_buffer")?;
                    shim::foreach_mul_scalar_(&refs(&bufs), h.momentum)?;
                    shim::foreach_addcdiv_(&refs(&bufs), &g, &refs(&avg), 1.0)?;
                    shim::foreach_add_list_(&params, &refs(&bufs), -h.lr)
                } else {
                    shim::foreach_addcdiv_(&params, &g, &refs(&avg), -h.lr)
                }
            }
            Impl::Reference => {
                for k in 0..b.params.len() {
                    let p = b.params[k].shallow_clone();
                    let _ = steps[k].shallow_clone().f_add_scalar_(1.0)?;
                    let g = prep_grad(&p, &b.grads[k], h.maximize, Decay::new(h.wd, false, h.lr))?;
                    let s = sq[k].shallow_clone();
                    mul_(&s, h.alpha)?;
                    addcmul_(&s, &g, &g, 1.0 - h.alpha)?;
                    let avg = if h.centered {
                        let mut ga = b.states[k][3]
                            .as_ref()
                            .map(|t| t.shallow_clone())
                            .ok_or_else(|| Error::Internal("grad_avg missing".into()))?;
                        let _ = ga.f_lerp_(&g, 1.0 - h.alpha)?;
                        let avg = deep_copy(&s)?;
                        addcmul_(&avg, &ga, &ga, -1.0)?;
                        avg.f_sqrt()?
                    } else {
                        s.f_sqrt()?
                    }
                    .f_add_scalar(h.eps)?;
                    if h.momentum > 0.0 {
                        let buf = b.states[k][2]
                            .as_ref()
                            .map(|t| t.shallow_clone())
                            .ok_or_else(|| Error::Internal("momentum_buffer missing".into()))?;
                        mul_(&buf, h.momentum)?;
                        addcdiv_(&buf, &g, &avg, 1.0)?;
                        add_(&p, &buf, -h.lr)?;
                    } else {
                        addcdiv_(&p, &g, &avg, -h.lr)?;
                    }
                }
                Ok(())
            }
        }
    }
}
