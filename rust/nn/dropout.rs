//! Dropout, Dropout2d and AlphaDropout through libtorch's own kernels, so
//! a run seeded with `manual_seed` draws the same mask as torch.nn.

use tch::Tensor;

use super::{check_input, Module, TrainFlag};
use crate::tensor::require_float;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropoutKind {
    /// Elementwise inverted dropout (`at::dropout`).
    Plain,
    /// Whole channels of [N, C, H, W] (`at::feature_dropout`).
    Channel2d,
    /// SELU-preserving dropout (`at::alpha_dropout`).
    Alpha,
}

pub struct Dropout {
    kind: DropoutKind,
    p: f64,
    training: TrainFlag,
}

impl Dropout {
    pub fn new(kind: DropoutKind, p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Value(format!(
                "{}: p must be in [0, 1], got {p}",
                title(kind)
            )));
        }
        Ok(Dropout {
            kind,
            p,
            training: TrainFlag::default(),
        })
    }
    pub fn p(&self) -> f64 {
        self.p
    }
    pub fn training(&self) -> bool {
        self.training.get()
    }
}

fn title(kind: DropoutKind) -> &'static str {
    match kind {
        DropoutKind::Plain => "Dropout",
        DropoutKind::Channel2d => "Dropout2d",
        DropoutKind::Alpha => "AlphaDropout",
    }
}

impl Module for Dropout {
    fn name(&self) -> &str {
        match self.kind {
            DropoutKind::Plain => "dropout",
            DropoutKind::Channel2d => "dropout2d",
            DropoutKind::Alpha => "alpha_dropout",
        }
    }
    fn describe(&self) -> String {
        format!("{}(p={})", title(self.kind), self.p)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.kind == DropoutKind::Channel2d {
            check_input(self, x, &[4], "[N, C, H, W]")?;
        } else {
            require_float(x, &format!("{} input", self.describe()))?;
        }
        if !self.training.get() || self.p == 0.0 {
            return Ok(x.shallow_clone());
        }
        Ok(match self.kind {
            DropoutKind::Plain => x.f_dropout(self.p, true)?,
            DropoutKind::Channel2d => x.f_feature_dropout(self.p, true)?,
            DropoutKind::Alpha => x.f_alpha_dropout(self.p, true)?,
        })
    }
    fn set_training(&self, on: bool) -> Result<()> {
        self.training.set(on);
        Ok(())
    }
    fn training_mode(&self) -> Option<bool> {
        Some(self.training.get())
    }
}
