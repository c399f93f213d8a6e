//! floDl's built-in graph nodes: StateAdd, Reshape, routers, selectors and
//! halting conditions.

use tch::{Device, Kind, Tensor};

use crate::nn::{Linear, Module, Parameter};
use crate::{Error, Result};

/// x + Σrefs (identity without refs): the usual target of forward refs.
pub struct StateAdd;

impl Module for StateAdd {
    fn name(&self) -> &str {
        "state_add"
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.shallow_clone())
    }
    fn accepts_refs(&self) -> bool {
        true
    }
    fn forward_named(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        add_refs(x, refs, "StateAdd")
    }
}

/// x + Σ refs, with a shape check naming the ref.
pub fn add_refs(x: &Tensor, refs: &[(String, Tensor)], who: &str) -> Result<Tensor> {
    let mut acc = x.shallow_clone();
    for (tag, r) in refs {
        if r.size() != x.size() {
            return Err(Error::Shape(format!(
                "{who}: ref '{tag}' has shape {:?} but the stream has {:?}",
                r.size(),
                x.size()
            )));
        }
        acc = acc.f_add(r)?;
    }
    Ok(acc)
}

/// Reshape to a fixed shape (one dimension may be -1).
pub struct Reshape(pub Vec<i64>);

impl Module for Reshape {
    fn name(&self) -> &str {
        "reshape"
    }
    fn describe(&self) -> String {
        format!("Reshape({:?})", self.0)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.f_reshape(self.0.as_slice()).map_err(|e| {
            Error::Shape(format!(
                "Reshape({:?}) of shape {:?}: {e}",
                self.0,
                x.size()
            ))
        })
    }
}

/// Linear(dim, n) then softmax (or sigmoid) over the last dimension; refs
/// are added to the input first.
pub struct Router {
    linear: Linear,
    sigmoid: bool,
}

impl Router {
    pub fn softmax(dim: i64, n: i64) -> Result<Self> {
        Ok(Router {
            linear: Linear::new(dim, n, true, Device::Cpu)?,
            sigmoid: false,
        })
    }
    pub fn sigmoid(dim: i64, n: i64) -> Result<Self> {
        Ok(Router {
            linear: Linear::new(dim, n, true, Device::Cpu)?,
            sigmoid: true,
        })
    }
}

impl Module for Router {
    fn name(&self) -> &str {
        if self.sigmoid {
            "sigmoid_router"
        } else {
            "softmax_router"
        }
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let z = self.linear.forward(x)?;
        Ok(if self.sigmoid {
            z.f_sigmoid()?
        } else {
            z.f_softmax(-1, None::<Kind>)?
        })
    }
    fn accepts_refs(&self) -> bool {
        true
    }
    fn forward_named(&self, x: &Tensor, refs: &[(String, Tensor)]) -> Result<Tensor> {
        self.forward(&add_refs(x, refs, self.name())?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        self.linear.parameters()
    }
}

/// Always selects branch i (as a [1] float tensor).
pub struct FixedSelector(pub i64);

impl Module for FixedSelector {
    fn name(&self) -> &str {
        "fixed_selector"
    }
    fn forward(&self, _x: &Tensor) -> Result<Tensor> {
        Ok(Tensor::f_from_slice(&[self.0 as f32])?)
    }
}

/// Linear(dim, n), then argmax over the flattened logits (floDl: with a
/// batch above 1 the index can exceed n, which the switch reports).
pub struct ArgmaxSelector(Linear);

impl ArgmaxSelector {
    pub fn new(dim: i64, n: i64) -> Result<Self> {
        Ok(ArgmaxSelector(Linear::new(dim, n, true, Device::Cpu)?))
    }
}

impl Module for ArgmaxSelector {
    fn name(&self) -> &str {
        "argmax_selector"
    }
    fn capture_blocker(&self) -> Option<String> {
        Some("argmax_selector picks a branch for a host-side switch".into())
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let z = self.0.forward(x)?;
        Ok(z.f_flatten(0, -1)?
            .f_argmax(0, false)?
            .f_to_kind(Kind::Float)?
            .f_reshape([1])?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        self.0.parameters()
    }
}

/// [max(x) − threshold]: halts a loop once any element exceeds threshold.
pub struct ThresholdHalt(pub f64);

impl Module for ThresholdHalt {
    fn name(&self) -> &str {
        "threshold_halt"
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_max()?.f_sub_scalar(self.0)?.f_reshape([1])?)
    }
}

/// Linear(dim, 1): a learned halting score.
pub struct LearnedHalt(Linear);

impl LearnedHalt {
    pub fn new(dim: i64) -> Result<Self> {
        Ok(LearnedHalt(Linear::new(dim, 1, true, Device::Cpu)?))
    }
}

impl Module for LearnedHalt {
    fn name(&self) -> &str {
        "learned_halt"
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x)
    }
    fn parameters(&self) -> Vec<Parameter> {
        self.0.parameters()
    }
}
