//! NAdam: torch.optim.NAdam, with its momentum-decay schedule
//! μ_t = β1·(1 − ½·0.96^(t·ψ)) (floDl's NAdam lacks it; torch wins).

use tch::{Kind, Tensor};

use super::common::{addcdiv_, bump_steps, moment, moments, mul_, prep_grad, prep_grads, Decay};
use super::driver::{refs, step_tensor, Algorithm, Amp, Bucket, State};
use super::hyper::{check_betas, check_nonneg, HValue, Hyper};
use super::Impl;
use crate::{shim, Error, Result};

pub struct NAdam;

impl Algorithm for NAdam {
    fn name(&self) -> &'static str {
        "NAdam"
    }

    fn defaults(&self) -> Hyper {
        Hyper::from_pairs(&[
            ("lr", HValue::F(2e-3)),
            ("betas", HValue::P(0.9, 0.999)),
            ("eps", HValue::F(1e-8)),
            ("weight_decay", HValue::F(0.0)),
            ("momentum_decay", HValue::F(4e-3)),
            ("decoupled_weight_decay", HValue::B(false)),
            ("maximize", HValue::B(false)),
        ])
    }

    fn validate(&self, h: &Hyper) -> Result<()> {
        check_nonneg("NAdam", h, "lr", "learning rate")?;
        check_nonneg("NAdam", h, "eps", "epsilon value")?;
        check_betas("NAdam", h)?;
        check_nonneg("NAdam", h, "weight_decay", "weight_decay value")?;
        check_nonneg("NAdam", h, "momentum_decay", "momentum_decay value")
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["step", "mu_product", "exp_avg", "exp_avg_sq"]
    }

    fn scalar_slots(&self) -> &'static [&'static str] {
        &["step", "mu_product"]
    }

    fn init_state(&self, p: &Tensor, _h: &Hyper, imp: Impl) -> Result<State> {
        Ok(vec![
            Some(step_tensor(p, imp)?),
            Some(Tensor::f_ones([], (Kind::Float, tch::Device::Cpu))?),
            Some(p.f_zeros_like()?),
            Some(p.f_zeros_like()?),
        ])
    }

    fn step(&self, h: &Hyper, b: &mut Bucket, imp: Impl, _amp: Amp) -> Result<()> {
        let (lr, (b1, b2), eps, psi) = (
            h.f("lr")?,
            h.pair("betas")?,
            h.f("eps")?,
            h.f("momentum_decay")?,
        );
        let decay = Decay::new(h.f("weight_decay")?, h.b("decoupled_weight_decay")?, lr);
        let maximize = h.b("maximize")?;
        let (steps, mu_p, m, v) = (
            b.slot(0, "step")?,
            b.slot(1, "mu_product")?,
            b.slot(2, "exp_avg")?,
            b.slot(3, "exp_avg_sq")?,
        );
        let mu_at = |t: f64| b1 * (1.0 - 0.5 * 0.96f64.powf(t * psi));
        match imp {
            Impl::Fused => Err(Error::Value("NAdam has no fused kernel".into())),
            Impl::Foreach => {
                let t = bump_steps(&steps)?;
                let g = prep_grads(&b.params, &b.grads, maximize, decay)?;
                moments(&m, &v, &g, b1, b2)?;
                let denom = shim::foreach_sqrt(&refs(&v))?;
                let bc_sqrt: Vec<f64> = t.iter().map(|s| (1.0 - b2.powf(*s)).sqrt()).collect();
                let mus: Vec<f64> = t.iter().map(|s| mu_at(*s)).collect();
                let mu_next: Vec<f64> = t.iter().map(|s| mu_at(s + 1.0)).collect();
                shim::foreach_mul_scalarlist_(&refs(&mu_p), &mus)?;
                shim::foreach_div_scalarlist_(&refs(&denom), &bc_sqrt)?;
                shim::foreach_add_scalar_(&refs(&denom), eps)?;
                let prods = mu_p
                    .iter()
                    .map(|t| Ok(t.f_double_value(&[])?))
                    .collect::<Result<Vec<f64>>>()?;
                let sg: Vec<f64> = mus
                    .iter()
                    .zip(&prods)
                    .map(|(mu, pr)| -(lr * (1.0 - mu) / (1.0 - pr)))
                    .collect();
                let se: Vec<f64> = mu_next
                    .iter()
                    .zip(&prods)
                    .map(|(mn, pr)| -(lr * mn / (1.0 - pr * mn)))
                    .collect();
                shim::foreach_addcdiv_scalarlist_(&refs(&b.params), &refs(&g), &refs(&denom), &sg)?;
                shim::foreach_addcdiv_scalarlist_(&refs(&b.params), &refs(&m), &refs(&denom), &se)
            }
            Impl::Reference => {
                for k in 0..b.params.len() {
                    let p = b.params[k].shallow_clone();
                    let mut st = steps[k].shallow_clone();
                    let _ = st.f_add_scalar_(1.0)?;
                    let step = st.f_double_value(&[])?;
                    let bc2 = 1.0 - b2.powf(step);
                    let g = prep_grad(&p, &b.grads[k], maximize, decay)?;
                    let (mu, mn) = (mu_at(step), mu_at(step + 1.0));
                    let mp = mu_p[k].shallow_clone();
                    mul_(&mp, mu)?;
                    moment(&m[k], &v[k], &g, b1, b2)?;
                    let denom = v[k].f_div_scalar(bc2)?.f_sqrt()?.f_add_scalar(eps)?;
                    let prod = mp.f_double_value(&[])?;
                    // torch: param.addcdiv_(grad, denom, value=...), the
                    // scalar inside the kernel, not a pre-scaled numerator.
                    addcdiv_(&p, &g, &denom, -(lr * (1.0 - mu) / (1.0 - prod)))?;
                    addcdiv_(&p, &m[k], &denom, -(lr * mn / (1.0 - prod * mn)))?;
                }
                Ok(())
            }
        }
    }
}
