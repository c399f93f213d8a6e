//! What a step minimises: a built-in loss of (prediction, target), a user
//! callback of the same, or a per-batch closure (Kaun's `(x, loss_fn)`).

use std::sync::Arc;

use tch::Tensor;

use crate::loss::{LossSpec, Reduction};
use crate::{Error, Result};

/// A loss given by the user (a Python callable, behind the bindings).
pub type LossCallback = dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync;

/// A loss of the prediction alone (Kaun's per-batch `loss_fn`).
pub type StepFn = dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync;

/// A built-in loss (kind and options: the step stays in Rust) or a callback.
#[derive(Clone)]
pub enum LossFn {
    Builtin(LossSpec),
    Custom(Arc<LossCallback>),
}

impl LossFn {
    /// A built-in loss as a Trainer's: it must take (pred, target) and give a
    /// scalar (a step needs one number to minimise).
    pub fn builtin(spec: LossSpec) -> Result<Self> {
        let k = spec.kind;
        if k.inputs().len() != 2 {
            return Err(Error::Value(format!(
                "Trainer: the loss {} takes ({}), not (pred, target)",
                k.fn_name(),
                k.inputs().join(", ")
            )));
        }
        if spec.opts.reduction == Reduction::None {
            return Err(Error::Value(format!(
                "Trainer: the loss {} has reduction='none'; a training step needs a scalar loss",
                k.fn_name()
            )));
        }
        Ok(LossFn::Builtin(spec))
    }

    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            LossFn::Builtin(spec) => spec.compute(pred, target),
            LossFn::Custom(f) => f(pred, target),
        }
    }

    pub fn is_builtin(&self) -> bool {
        matches!(self, LossFn::Builtin(_))
    }
}

/// The second half of a batch: a target tensor for the trainer's loss, or a
/// function of the prediction that is the loss.
pub enum Target {
    Tensor(Tensor),
    Loss(Arc<StepFn>),
}
