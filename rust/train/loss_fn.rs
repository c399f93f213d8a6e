//! What a step minimises: a built-in loss of (prediction, target), a user
//! callback of the same, or a per-batch closure (Kaun's `(x, loss_fn)`).

use std::sync::Arc;

use tch::Tensor;

use crate::loss::LossSpec;
use crate::Result;

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
