//! Evaluation and prediction: the model in eval mode without grad, its
//! training mode restored afterwards (also when the call fails).

use tch::Tensor;

use super::engine::Engine;
use super::loss_fn::Target;
use crate::Result;

impl Engine {
    /// Runs `f` in eval mode without grad; the training mode is restored
    /// (also when `f` fails). `evaluate`/`predict` of a model the caller
    /// runs itself go through this.
    pub fn in_eval<T>(&self, was_training: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.model.set_training(false)?;
        let out = {
            let _g = tch::no_grad_guard();
            f()
        };
        // Restore the mode even when f failed; f's error comes first.
        let restored = self.model.set_training(was_training);
        let out = out?;
        restored?;
        Ok(out)
    }

    /// Eval mode, no grad: the model's output on `inputs`; mode restored.
    pub fn predict(&self, inputs: &[Tensor], was_training: bool) -> Result<Tensor> {
        let xs = self.inputs_to_device(inputs)?;
        self.in_eval(was_training, || self.forward_inputs(&xs))
    }

    /// Eval mode, no grad: (loss, prediction) on one batch; mode restored.
    pub fn eval_batch(
        &self,
        inputs: &[Tensor],
        target: &Target,
        was_training: bool,
    ) -> Result<(Tensor, Tensor)> {
        let xs = self.inputs_to_device(inputs)?;
        self.in_eval(was_training, || {
            let pred = self.forward_inputs(&xs)?;
            let loss = match target {
                Target::Tensor(y) => self.loss.compute(&pred, &self.to_device(y)?)?,
                Target::Loss(f) => f(&pred)?,
            };
            Ok((loss.f_detach()?, pred))
        })
    }
}
