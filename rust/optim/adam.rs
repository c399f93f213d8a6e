//! Adam and AdamW (decoupled weight decay), numerically torch.optim.Adam /
//! AdamW. Fused: `_fused_adam(w)_` per bucket (steps bumped by one
//! `_foreach_add_`), no host sync. Foreach: torch's `_multi_tensor_adam`.
//! Reference: torch's `_single_tensor_adam`.

use tch::Tensor;

use super::common::{addcdiv_, moment, moments, prep_grad, prep_grads, Decay};
use super::driver::{
    bump_steps, refs, step_tensor, undo_skipped_step, Algorithm, Amp, Bucket, State,
};
use super::hyper::{check_betas, check_nonneg, HValue, Hyper};
use super::Impl;
use crate::shim::{self, AdamHyper, AdamLists};
use crate::Result;

const STEP: usize = 0;
const EXP_AVG: usize = 1;
const EXP_AVG_SQ: usize = 2;
const MAX_SQ: usize = 3;

pub struct Adam {
    /// AdamW when true.
    pub decoupled: bool,
}

struct H {
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    amsgrad: bool,
    maximize: bool,
}

fn read(h: &Hyper) -> Result<H> {
    let (b1, b2) = h.pair("betas")?;
    Ok(H {
        lr: h.f("lr")?,
        b1,
        b2,
        eps: h.f("eps")?,
        wd: h.f("weight_decay")?,
        amsgrad: h.b("amsgrad")?,
        maximize: h.b("maximize")?,
    })
}

impl Algorithm for Adam {
    fn name(&self) -> &'static str {
        if self.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }

    fn defaults(&self) -> Hyper {
        Hyper::from_pairs(&[
            ("lr", HValue::F(1e-3)),
            ("betas", HValue::P(0.9, 0.999)),
            ("eps", HValue::F(1e-8)),
            (
                "weight_decay",
                HValue::F(if self.decoupled { 1e-2 } else { 0.0 }),
            ),
            ("amsgrad", HValue::B(false)),
            ("maximize", HValue::B(false)),
            ("decoupled_weight_decay", HValue::B(self.decoupled)),
        ])
    }

    fn validate(&self, h: &Hyper) -> Result<()> {
        let who = self.name();
        check_nonneg(who, h, "lr", "learning rate")?;
        check_nonneg(who, h, "eps", "epsilon value")?;
        check_betas(who, h)?;
        check_nonneg(who, h, "weight_decay", "weight_decay value")?;
        // torch's Adam carries this key; True there means AdamW's update.
        if h.b("decoupled_weight_decay")? != self.decoupled {
            let want = if self.decoupled { "AdamW" } else { "Adam" };
            return Err(crate::Error::Value(format!(
                "{who}: decoupled_weight_decay={} does not match {want}; use {}",
                !self.decoupled,
                if self.decoupled { "Adam" } else { "AdamW" }
            )));
        }
        Ok(())
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    }

    fn has_fused(&self) -> bool {
        true
    }

    fn init_state(&self, p: &Tensor, h: &Hyper, imp: Impl) -> Result<State> {
        Ok(vec![
            Some(step_tensor(p, imp)?),
            Some(p.f_zeros_like()?),
            Some(p.f_zeros_like()?),
            if h.b("amsgrad")? {
                Some(p.f_zeros_like()?)
            } else {
                None
            },
        ])
    }

    fn step(&self, hy: &Hyper, b: &mut Bucket, imp: Impl, amp: Amp) -> Result<()> {
        let h = read(hy)?;
        match imp {
            Impl::Fused => self.fused(&h, b, amp),
            Impl::Foreach => self.foreach(&h, b),
            Impl::Reference => self.reference(&h, b),
        }
    }
}

impl Adam {
    fn fused(&self, h: &H, b: &mut Bucket, amp: Amp) -> Result<()> {
        let steps = b.slot(STEP, "step")?;
        bump_steps(&steps)?;
        let maxes = if h.amsgrad {
            b.slot(MAX_SQ, "max_exp_avg_sq")?
        } else {
            Vec::new()
        };
        let lists = AdamLists {
            params: &b.params,
            grads: &b.grads,
            exp_avgs: &b.slot(EXP_AVG, "exp_avg")?,
            exp_avg_sqs: &b.slot(EXP_AVG_SQ, "exp_avg_sq")?,
            max_exp_avg_sqs: &maxes,
            state_steps: &steps,
        };
        let hyper = AdamHyper {
            lr: h.lr,
            beta1: h.b1,
            beta2: h.b2,
            weight_decay: h.wd,
            eps: h.eps,
            amsgrad: h.amsgrad,
            maximize: h.maximize,
            decoupled: self.decoupled,
        };
        shim::fused_adam_(&lists, hyper, amp.grad_scale, amp.found_inf, amp.lr)?;
        // As torch: a step the kernel skipped (found_inf = 1) does not count.
        undo_skipped_step(&steps, amp.found_inf)
    }

    fn foreach(&self, h: &H, b: &mut Bucket) -> Result<()> {
        let params = refs(&b.params);
        let steps = b.slot(STEP, "step")?;
        let (m, v) = (
            b.slot(EXP_AVG, "exp_avg")?,
            b.slot(EXP_AVG_SQ, "exp_avg_sq")?,
        );
        shim::foreach_add_scalar_(&refs(&steps), 1.0)?;
        let grads = prep_grads(
            &b.params,
            &b.grads,
            h.maximize,
            Decay::new(h.wd, self.decoupled, h.lr),
        )?;
        moments(&m, &v, &grads, h.b1, h.b2)?;
        let t = b.scalars(STEP, "step")?;
        let step_size: Vec<f64> = t.iter().map(|s| -(h.lr / (1.0 - h.b1.powf(*s)))).collect();
        let bc2_sqrt: Vec<f64> = t.iter().map(|s| (1.0 - h.b2.powf(*s)).sqrt()).collect();
        let denom = if h.amsgrad {
            let mx = b.slot(MAX_SQ, "max_exp_avg_sq")?;
            shim::foreach_maximum_(&refs(&mx), &refs(&v))?;
            shim::foreach_sqrt(&refs(&mx))?
        } else {
            shim::foreach_sqrt(&refs(&v))?
        };
        shim::foreach_div_scalarlist_(&refs(&denom), &bc2_sqrt)?;
        shim::foreach_add_scalar_(&refs(&denom), h.eps)?;
        shim::foreach_addcdiv_scalarlist_(&params, &refs(&m), &refs(&denom), &step_size)
    }

    fn reference(&self, h: &H, b: &mut Bucket) -> Result<()> {
        for (k, st) in b.states.iter_mut().enumerate() {
            let param = b.params[k].shallow_clone();
            let [Some(step_t), Some(m), Some(v), mx] = st.as_mut_slice() else {
                return Err(crate::Error::Internal("Adam state is incomplete".into()));
            };
            let _ = step_t.f_add_scalar_(1.0)?;
            let step = step_t.f_double_value(&[])?;
            let grad = prep_grad(
                &param,
                &b.grads[k],
                h.maximize,
                Decay::new(h.wd, self.decoupled, h.lr),
            )?;
            moment(m, v, &grad, h.b1, h.b2)?;
            let second = match mx {
                Some(mx) => {
                    mx.f_copy_(&mx.f_maximum(v)?)?;
                    mx.shallow_clone()
                }
                None => v.shallow_clone(),
            };
            let step_size = h.lr / (1.0 - h.b1.powf(step));
            let denom = second
                .f_sqrt()?
                .f_div_scalar((1.0 - h.b2.powf(step)).sqrt())?
                .f_add_scalar(h.eps)?;
            addcdiv_(&param, m, &denom, -step_size)?;
        }
        Ok(())
    }
}
