//! AddParameter: adds one learned tensor `weight` of a fixed shape to its
//! input, broadcasting (name `add_parameter`), e.g. a learned positional
//! embedding [1, S, D] added to token embeddings [B, S, D]. The weight
//! starts at zeros (no random draws, so adding one to a model leaves every
//! other layer's initialisation unchanged under a seed).

use tch::{Device, Kind, Tensor};

use super::{check_kind, init, param, Module, Parameter};
use crate::tensor::{require_float, shape_str, SharedTensor};
use crate::{Error, Result};

pub struct AddParameter {
    shape: Vec<i64>,
    weight: SharedTensor,
}

impl AddParameter {
    pub fn new(shape: &[i64], device: Device) -> Result<Self> {
        if shape.is_empty() || shape.iter().any(|&d| d <= 0) {
            return Err(Error::Value(format!(
                "AddParameter: shape must be one or more positive sizes, got {shape:?}"
            )));
        }
        let w = Tensor::f_zeros(shape, (Kind::Float, device))?;
        Ok(AddParameter {
            shape: shape.to_vec(),
            weight: SharedTensor::new(init::into_param(w)?),
        })
    }

    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
}

/// True when `a` and `b` broadcast to `a`'s shape (the output keeps the
/// input's shape; torch would also allow a weight that widens the input,
/// which this layer refuses as a shape error).
fn broadcasts_into(x: &[i64], w: &[i64]) -> bool {
    w.len() <= x.len()
        && w.iter()
            .rev()
            .zip(x.iter().rev())
            .all(|(&wd, &xd)| wd == xd || wd == 1)
}

impl Module for AddParameter {
    fn name(&self) -> &str {
        "add_parameter"
    }
    fn describe(&self) -> String {
        format!("AddParameter({:?})", self.shape)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, &format!("{} input", self.describe()))?;
        let w = &self.weight.handle();
        if !broadcasts_into(&x.size(), &w.size()) {
            return Err(Error::Shape(format!(
                "{}: the weight {} does not broadcast to the input's shape {}",
                self.describe(),
                shape_str(w),
                shape_str(x)
            )));
        }
        check_kind(self, x, w)?;
        Ok(x.f_add(w)?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![param("weight", &self.weight)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_its_weight_broadcasting() {
        let m = AddParameter::new(&[1, 3, 2], Device::Cpu).unwrap();
        let x = Tensor::randn([4, 3, 2], (Kind::Float, Device::Cpu));
        assert!(m.forward(&x).unwrap().equal(&x)); // zeros at first
        let _g = tch::no_grad_guard();
        m.weight()
            .copy_(&Tensor::randn([1, 3, 2], (Kind::Float, Device::Cpu)));
        assert!(m.forward(&x).unwrap().equal(&(&x + m.weight())));
        let bad = Tensor::zeros([4, 2, 2], (Kind::Float, Device::Cpu));
        assert!(matches!(m.forward(&bad), Err(Error::Shape(_))));
        assert!(matches!(
            AddParameter::new(&[0, 2], Device::Cpu),
            Err(Error::Value(_))
        ));
    }
}
