//! Linear: y = x·Wᵀ + b (floDl name `linear`).

use tch::{Device, Tensor};

use super::{init, Module, Parameter};
use crate::tensor::{require_float, shape_str, SharedTensor};
use crate::{Error, Result};

pub struct Linear {
    in_features: i64,
    out_features: i64,
    weight: SharedTensor,
    bias: Option<SharedTensor>,
}

impl Linear {
    /// Weight [out, in] ~ kaiming_uniform(a=√5) = U(±1/√in); bias ~ U(±1/√in).
    pub fn new(in_features: i64, out_features: i64, bias: bool, device: Device) -> Result<Self> {
        if in_features <= 0 || out_features <= 0 {
            return Err(Error::Value(format!(
                "Linear: in_features and out_features must be positive, got {in_features} and {out_features}"
            )));
        }
        let w = init::kaiming_uniform(
            &[out_features, in_features],
            in_features,
            5f64.sqrt(),
            device,
        )?;
        let b = if bias {
            Some(init::uniform_bias(&[out_features], in_features, device)?)
        } else {
            None
        };
        Ok(Linear {
            in_features,
            out_features,
            weight: SharedTensor::new(init::into_param(w)?),
            bias: b.map(init::into_param).transpose()?.map(SharedTensor::new),
        })
    }

    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }

    pub fn bias(&self) -> Option<Tensor> {
        self.bias.as_ref().map(|b| b.handle())
    }

    pub fn in_features(&self) -> i64 {
        self.in_features
    }

    pub fn out_features(&self) -> i64 {
        self.out_features
    }
}

impl Module for Linear {
    fn name(&self) -> &str {
        "linear"
    }

    fn describe(&self) -> String {
        format!("Linear({} -> {})", self.in_features, self.out_features)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        require_float(x, "Linear input")?;
        let size = x.size();
        if size.last() != Some(&self.in_features) {
            return Err(Error::Shape(format!(
                "{}: expected input of shape [..., {}], got {}",
                self.describe(),
                self.in_features,
                shape_str(x)
            )));
        }
        let w = self.weight.handle();
        super::check_kind(self, x, &w)?;
        let b = self.bias.as_ref().map(SharedTensor::handle);
        crate::shim::linear(x, &w, b.as_ref())
    }

    fn parameters(&self) -> Vec<Parameter> {
        let mut v = vec![Parameter {
            name: "weight".into(),
            tensor: self.weight.handle(),
        }];
        if let Some(b) = &self.bias {
            v.push(Parameter {
                name: "bias".into(),
                tensor: b.handle(),
            });
        }
        v
    }
}
