//! Adamax: torch.optim.Adamax (infinity-norm second moment).

use tch::Tensor;

use super::common::{addcdiv_, bump_steps, mul_, prep_grad, prep_grads, Decay};
use super::driver::{refs, step_tensor, Algorithm, Amp, Bucket, State};
use super::hyper::{check_betas, check_nonneg, HValue, Hyper};
use super::Impl;
use crate::{shim, Error, Result};

pub struct Adamax;

impl Algorithm for Adamax {
    fn name(&self) -> &'static str {
        "Adamax"
    }

    fn defaults(&self) -> Hyper {
        Hyper::from_pairs(&[
            ("lr", HValue::F(2e-3)),
            ("betas", HValue::P(0.9, 0.999)),
            ("eps", HValue::F(1e-8)),
            ("weight_decay", HValue::F(0.0)),
            ("maximize", HValue::B(false)),
        ])
    }

    fn validate(&self, h: &Hyper) -> Result<()> {
        check_nonneg("Adamax", h, "lr", "learning rate")?;
        check_nonneg("Adamax", h, "eps", "epsilon value")?;
        check_betas("Adamax", h)?;
        check_nonneg("Adamax", h, "weight_decay", "weight_decay value")
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["step", "exp_avg", "exp_inf"]
    }

    fn init_state(&self, p: &Tensor, _h: &Hyper, imp: Impl) -> Result<State> {
        Ok(vec![
            Some(step_tensor(p, imp)?),
            Some(p.f_zeros_like()?),
            Some(p.f_zeros_like()?),
        ])
    }

    fn step(&self, h: &Hyper, b: &mut Bucket, imp: Impl, _amp: Amp) -> Result<()> {
        let (lr, (b1, b2), eps) = (h.f("lr")?, h.pair("betas")?, h.f("eps")?);
        let decay = Decay::new(h.f("weight_decay")?, false, lr);
        let maximize = h.b("maximize")?;
        let (steps, m, u) = (
            b.slot(0, "step")?,
            b.slot(1, "exp_avg")?,
            b.slot(2, "exp_inf")?,
        );
        match imp {
            Impl::Fused => Err(Error::Value("Adamax has no fused kernel".into())),
            Impl::Foreach => {
                let t = bump_steps(&steps)?;
                let g = prep_grads(&b.params, &b.grads, maximize, decay)?;
                shim::foreach_lerp_(&refs(&m), &refs(&g), 1.0 - b1)?;
                shim::foreach_mul_scalar_(&refs(&u), b2)?;
                let abs = shim::foreach_abs(&refs(&g))?;
                shim::foreach_add_scalar_(&refs(&abs), eps)?;
                shim::foreach_maximum_(&refs(&u), &refs(&abs))?;
                let clr: Vec<f64> = t.iter().map(|s| -(lr / (1.0 - b1.powf(*s)))).collect();
                shim::foreach_addcdiv_scalarlist_(&refs(&b.params), &refs(&m), &refs(&u), &clr)
            }
            Impl::Reference => {
                for k in 0..b.params.len() {
                    let p = b.params[k].shallow_clone();
                    let mut st = steps[k].shallow_clone();
                    let _ = st.f_add_scalar_(1.0)?;
                    let step = st.f_double_value(&[])?;
                    let g = prep_grad(&p, &b.grads[k], maximize, decay)?;
                    let _ = m[k].shallow_clone().f_lerp_(&g, 1.0 - b1)?;
                    let mut uk = u[k].shallow_clone();
                    mul_(&uk, b2)?;
                    uk.f_copy_(&uk.f_maximum(&g.f_abs()?.f_add_scalar(eps)?)?)?;
                    let clr = lr / (1.0 - b1.powf(step));
                    // torch: param.addcdiv_(exp_avg, exp_inf, value=-clr)
                    addcdiv_(&p, &m[k], &uk, -clr)?;
                }
                Ok(())
            }
        }
    }
}
