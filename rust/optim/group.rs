//! Parameter groups: tensors sharing one set of hyperparameters.

use tch::Tensor;

use super::hyper::Hyper;
use crate::tensor::SharedTensor;
use crate::{shim, Error, Result};

pub struct ParamGroup {
    pub params: Vec<SharedTensor>,
    pub hyper: Hyper,
}

impl ParamGroup {
    /// Validates that every tensor can be optimised (a floating leaf).
    /// `hyper` holds only what the caller set; the optimizer fills defaults.
    pub fn new(params: Vec<Tensor>, hyper: Hyper) -> Result<Self> {
        for (i, p) in params.iter().enumerate() {
            if !p.is_leaf() {
                return Err(Error::Value(format!(
                    "parameter {i} is not a leaf tensor (it was computed from others); optimizers need leaves"
                )));
            }
            crate::tensor::require_float(p, &format!("parameter {i}"))?;
        }
        Ok(ParamGroup {
            params: params.into_iter().map(SharedTensor::new).collect(),
            hyper,
        })
    }
}

/// Sets the gradients of all tensors to None (undefined), like torch's
/// `zero_grad(set_to_none=True)`.
pub fn grads_to_none(params: &[SharedTensor]) -> Result<()> {
    let ts: Vec<Tensor> = params.iter().map(SharedTensor::handle).collect();
    shim::grads_set_to_none(&ts.iter().collect::<Vec<_>>())
}
