//! LayerNorm over the last dimension (floDl name `layernorm`).

use tch::{Device, Kind, Tensor};

use super::{init, Module, Parameter};
use crate::tensor::{require_float, shape_str, SharedTensor};
use crate::{Error, Result};

pub struct LayerNorm {
    size: i64,
    eps: f64,
    weight: SharedTensor,
    bias: SharedTensor,
}

impl LayerNorm {
    /// weight = 1, bias = 0, normalising the last dimension of size `size`.
    pub fn new(size: i64, eps: f64, device: Device) -> Result<Self> {
        if size <= 0 {
            return Err(Error::Value(format!(
                "LayerNorm: size must be positive, got {size}"
            )));
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(Error::Value(format!(
                "LayerNorm: eps must be positive, got {eps}"
            )));
        }
        let w = init::into_param(Tensor::f_ones([size], (Kind::Float, device))?)?;
        let b = init::into_param(Tensor::f_zeros([size], (Kind::Float, device))?)?;
        Ok(LayerNorm {
            size,
            eps,
            weight: SharedTensor::new(w),
            bias: SharedTensor::new(b),
        })
    }

    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }

    pub fn bias(&self) -> Tensor {
        self.bias.handle()
    }

    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Module for LayerNorm {
    fn name(&self) -> &str {
        "layernorm"
    }

    fn describe(&self) -> String {
        format!("LayerNorm({})", self.size)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "LayerNorm input")?;
        if x.size().last() != Some(&self.size) {
            return Err(Error::Shape(format!(
                "{}: expected input of shape [..., {}], got {}",
                self.describe(),
                self.size,
                shape_str(x)
            )));
        }
        Ok(x.f_layer_norm(
            [self.size],
            Some(&self.weight.handle()),
            Some(&self.bias.handle()),
            self.eps,
            true,
        )?)
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![
            Parameter {
                name: "weight".into(),
                tensor: self.weight.handle(),
            },
            Parameter {
                name: "bias".into(),
                tensor: self.bias.handle(),
            },
        ]
    }
}
