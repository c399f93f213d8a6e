//! Adagrad: torch.optim.Adagrad (lr_decay, weight_decay,
//! initial_accumulator_value). Fused: `_fused_adagrad_`.

use tch::Tensor;

use super::common::{addcdiv_, prep_grad, Decay};
use super::driver::{
    bump_steps, refs, step_tensor, undo_skipped_step, Algorithm, Amp, Bucket, State,
};
use super::hyper::{check_nonneg, HValue, Hyper};
use super::Impl;
use crate::shim::{self, AdagradHyper};
use crate::Result;

pub struct Adagrad;

struct H {
    lr: f64,
    lr_decay: f64,
    wd: f64,
    eps: f64,
    maximize: bool,
}

fn read(h: &Hyper) -> Result<H> {
    Ok(H {
        lr: h.f("lr")?,
        lr_decay: h.f("lr_decay")?,
        wd: h.f("weight_decay")?,
        eps: h.f("eps")?,
        maximize: h.b("maximize")?,
    })
}

impl Algorithm for Adagrad {
    fn name(&self) -> &'static str {
        "Adagrad"
    }

    fn defaults(&self) -> Hyper {
        Hyper::from_pairs(&[
            ("lr", HValue::F(1e-2)),
            ("lr_decay", HValue::F(0.0)),
            ("weight_decay", HValue::F(0.0)),
            ("initial_accumulator_value", HValue::F(0.0)),
            ("eps", HValue::F(1e-10)),
            ("maximize", HValue::B(false)),
        ])
    }

    fn validate(&self, h: &Hyper) -> Result<()> {
        check_nonneg("Adagrad", h, "lr", "learning rate")?;
        check_nonneg("Adagrad", h, "lr_decay", "lr_decay value")?;
        check_nonneg("Adagrad", h, "weight_decay", "weight_decay value")?;
        check_nonneg(
            "Adagrad",
            h,
            "initial_accumulator_value",
            "initial_accumulator_value",
        )?;
        check_nonneg("Adagrad", h, "eps", "epsilon value")
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["step", "sum"]
    }

    fn has_fused(&self) -> bool {
        true
    }

    fn init_state(&self, p: &Tensor, h: &Hyper, imp: Impl) -> Result<State> {
        let init = h.f("initial_accumulator_value")?;
        Ok(vec![Some(step_tensor(p, imp)?), Some(p.f_full_like(init)?)])
    }

    fn step(&self, hy: &Hyper, b: &mut Bucket, imp: Impl, amp: Amp) -> Result<()> {
        let h = read(hy)?;
        let steps = b.slot(0, "step")?;
        let sums = b.slot(1, "sum")?;
        match imp {
            Impl::Fused => {
                bump_steps(&steps)?;
                let ah = AdagradHyper {
                    lr: h.lr,
                    lr_decay: h.lr_decay,
                    weight_decay: h.wd,
                    eps: h.eps,
                    maximize: h.maximize,
                };
                shim::fused_adagrad_(
                    &b.params,
                    &b.grads,
                    &sums,
                    &steps,
                    ah,
                    amp.grad_scale,
                    amp.found_inf,
                    amp.lr,
                )?;
                // As torch: a step the kernel skipped does not count.
                undo_skipped_step(&steps, amp.found_inf)
            }
            Impl::Foreach => {
                let params = refs(&b.params);
                // A private copy: the scalar-list multiply below is in place.
                let grads = if h.maximize {
                    shim::foreach_neg(&refs(&b.grads))?
                } else {
                    shim::foreach_mul_scalar(&refs(&b.grads), 1.0)?
                };
                shim::foreach_add_scalar_(&refs(&steps), 1.0)?;
                if h.wd != 0.0 {
                    shim::foreach_add_list_(&refs(&grads), &params, h.wd)?;
                }
                let t = b.scalars(0, "step")?;
                let minus_clr: Vec<f64> = t
                    .iter()
                    .map(|s| -h.lr / (1.0 + (s - 1.0) * h.lr_decay))
                    .collect();
                let g = refs(&grads);
                shim::foreach_addcmul_(&refs(&sums), &g, &g, 1.0)?;
                let std = shim::foreach_sqrt(&refs(&sums))?;
                shim::foreach_add_scalar_(&refs(&std), h.eps)?;
                shim::foreach_mul_scalarlist_(&g, &minus_clr)?;
                shim::foreach_addcdiv_(&params, &g, &refs(&std), 1.0)
            }
            Impl::Reference => {
                for k in 0..b.params.len() {
                    let p = b.params[k].shallow_clone();
                    let mut st = steps[k].shallow_clone();
                    let _ = st.f_add_scalar_(1.0)?;
                    let step = st.f_double_value(&[])?;
                    let g = prep_grad(&p, &b.grads[k], h.maximize, Decay::new(h.wd, false, h.lr))?;
                    let clr = h.lr / (1.0 + (step - 1.0) * h.lr_decay);
                    let mut sum = sums[k].shallow_clone();
                    let _ = sum.f_addcmul_(&g, &g)?;
                    let std = sum.f_sqrt()?.f_add_scalar(h.eps)?;
                    // torch: param.addcdiv_(grad, std, value=-clr)
                    addcdiv_(&p, &g, &std, -clr)?;
                }
                Ok(())
            }
        }
    }
}
