//! Bilinear: y = x1ᵀ A x2 + b (floDl name `bilinear`).

use tch::{Device, Tensor};

use super::{check_kind, init, param, positive, Module, Parameter};
use crate::tensor::{require_float, shape_str, SharedTensor};
use crate::{Error, Result};

pub struct Bilinear {
    in1: i64,
    in2: i64,
    out: i64,
    weight: SharedTensor,
    bias: Option<SharedTensor>,
}

impl Bilinear {
    /// weight [out, in1, in2] and bias [out], both U(±1/√in1), weight first
    /// (as torch.nn.Bilinear).
    pub fn new(in1: i64, in2: i64, out: i64, bias: bool, device: Device) -> Result<Self> {
        positive("Bilinear", "in1_features", in1)?;
        positive("Bilinear", "in2_features", in2)?;
        positive("Bilinear", "out_features", out)?;
        let w = init::uniform_bias(&[out, in1, in2], in1, device)?;
        let b = if bias {
            Some(init::uniform_bias(&[out], in1, device)?)
        } else {
            None
        };
        Ok(Bilinear {
            in1,
            in2,
            out,
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

    /// y[..., o] = Σ x1[..., i] A[o, i, j] x2[..., j] + b[o].
    pub fn forward_bilinear(&self, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        let what = self.describe();
        require_float(x1, &format!("{what} input1"))?;
        require_float(x2, &format!("{what} input2"))?;
        let (s1, s2) = (x1.size(), x2.size());
        if s1.last() != Some(&self.in1)
            || s2.last() != Some(&self.in2)
            || s1[..s1.len() - 1] != s2[..s2.len() - 1]
        {
            return Err(Error::Shape(format!(
                "{what}: expected inputs [..., {}] and [..., {}] with equal leading dims, got {} and {}",
                self.in1,
                self.in2,
                shape_str(x1),
                shape_str(x2)
            )));
        }
        let (w, b) = (
            self.weight.handle(),
            self.bias.as_ref().map(SharedTensor::handle),
        );
        check_kind(self, x1, &w)?;
        check_kind(self, x2, &w)?;
        Ok(Tensor::f_bilinear(x1, x2, &w, b.as_ref())?)
    }
}

impl Module for Bilinear {
    fn name(&self) -> &str {
        "bilinear"
    }
    fn describe(&self) -> String {
        format!("Bilinear({}, {} -> {})", self.in1, self.in2, self.out)
    }
    /// As a one-input node: bilinear(x, x) (needs in1 == in2).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_bilinear(x, x)
    }
    fn parameters(&self) -> Vec<Parameter> {
        let mut v = vec![param("weight", &self.weight)];
        if let Some(b) = &self.bias {
            v.push(param("bias", b));
        }
        v
    }
}
