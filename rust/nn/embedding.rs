//! Embedding (with padding_idx) and EmbeddingBag (sum / mean / max bags).

use tch::{Device, Kind, Tensor};

use super::{init, param, positive, Module, Parameter};
use crate::tensor::{kind_str, shape_str, SharedTensor};
use crate::{Error, Result};

/// Requires int64/int32 indices in [0, num); `what` names the module.
fn check_indices(what: &str, idx: &Tensor, num: i64) -> Result<()> {
    let k = idx.f_kind()?;
    if !matches!(k, Kind::Int64 | Kind::Int) {
        return Err(Error::DType(format!(
            "{what}: indices must be int64 or int32, got {}",
            kind_str(k)
        )));
    }
    if idx.numel() > 0 {
        let lo = idx.f_min()?.f_int64_value(&[])?;
        let hi = idx.f_max()?.f_int64_value(&[])?;
        if lo < 0 || hi >= num {
            let bad = if lo < 0 { lo } else { hi };
            return Err(Error::Value(format!(
                "{what}: index {bad} is out of range [0, {num})"
            )));
        }
    }
    Ok(())
}

/// A lookup table [V, D] ~ N(0, 1); the padding row starts at zero and gets
/// no gradient (floDl name `embedding`).
pub struct Embedding {
    num: i64,
    dim: i64,
    padding_idx: Option<i64>,
    weight: SharedTensor,
}

impl Embedding {
    pub fn new(num: i64, dim: i64, padding_idx: Option<i64>, device: Device) -> Result<Self> {
        positive("Embedding", "num_embeddings", num)?;
        positive("Embedding", "embedding_dim", dim)?;
        let padding_idx = match padding_idx {
            Some(p) if p >= num || p < -num => {
                return Err(Error::Value(format!(
                    "Embedding: padding_idx {p} is out of range for {num} embeddings"
                )))
            }
            Some(p) if p < 0 => Some(num + p),
            p => p,
        };
        let w = Tensor::f_randn([num, dim], (Kind::Float, device))?;
        if let Some(p) = padding_idx {
            let mut row = w.f_get(p)?;
            let _ = row.f_zero_()?;
        }
        Ok(Embedding {
            num,
            dim,
            padding_idx,
            weight: SharedTensor::new(init::into_param(w)?),
        })
    }
    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
    pub fn padding_idx(&self) -> Option<i64> {
        self.padding_idx
    }
}

impl Module for Embedding {
    fn name(&self) -> &str {
        "embedding"
    }
    fn describe(&self) -> String {
        format!("Embedding({}, {})", self.num, self.dim)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_indices(&self.describe(), x, self.num)?;
        Ok(Tensor::f_embedding(
            &self.weight.handle(),
            x,
            self.padding_idx.unwrap_or(-1),
            false,
            false,
        )?)
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![param("weight", &self.weight)]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BagMode {
    Sum = 0,
    Mean = 1,
    Max = 2,
}

/// Bags of embeddings reduced by sum, mean or max (floDl name `embedding_bag`).
pub struct EmbeddingBag {
    num: i64,
    dim: i64,
    mode: BagMode,
    weight: SharedTensor,
}

impl EmbeddingBag {
    pub fn new(num: i64, dim: i64, mode: BagMode, device: Device) -> Result<Self> {
        positive("EmbeddingBag", "num_embeddings", num)?;
        positive("EmbeddingBag", "embedding_dim", dim)?;
        let w = Tensor::f_randn([num, dim], (Kind::Float, device))?;
        Ok(EmbeddingBag {
            num,
            dim,
            mode,
            weight: SharedTensor::new(init::into_param(w)?),
        })
    }
    pub fn weight(&self) -> Tensor {
        self.weight.handle()
    }
    pub fn mode(&self) -> BagMode {
        self.mode
    }

    /// Bags given as 1-D `indices` cut at the starts in 1-D `offsets`.
    pub fn forward_bag(&self, indices: &Tensor, offsets: &Tensor) -> Result<Tensor> {
        let what = self.describe();
        if indices.dim() != 1 || offsets.dim() != 1 {
            return Err(Error::Shape(format!(
                "{what}: forward_bag needs 1-D indices and 1-D offsets, got shapes {} and {}",
                shape_str(indices),
                shape_str(offsets)
            )));
        }
        check_indices(&what, indices, self.num)?;
        let n = indices.size()[0];
        if offsets.numel() > 0 {
            check_indices(&format!("{what} offsets"), offsets, n + 1)?;
            let first = offsets.f_get(0)?.f_int64_value(&[])?;
            if first != 0 {
                return Err(Error::Value(format!(
                    "{what}: offsets must start at 0, got {first}"
                )));
            }
        }
        let offsets = offsets.f_to_kind(indices.f_kind()?)?;
        let (out, _, _, _) = Tensor::f_embedding_bag(
            &self.weight.handle(),
            indices,
            &offsets,
            false,
            self.mode as i64,
            false,
            None::<&Tensor>,
            false,
        )?;
        Ok(out)
    }
}

impl Module for EmbeddingBag {
    fn name(&self) -> &str {
        "embedding_bag"
    }
    fn describe(&self) -> String {
        let m = match self.mode {
            BagMode::Sum => "sum",
            BagMode::Mean => "mean",
            BagMode::Max => "max",
        };
        format!("EmbeddingBag({}, {}, mode={m})", self.num, self.dim)
    }
    /// A 2-D input [B, L] is B bags of L indices each.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dim() != 2 {
            return Err(Error::Shape(format!(
                "{}: forward takes a 2-D input [bags, bag_size] (use forward_bag for offsets), got shape {}",
                self.describe(),
                shape_str(x)
            )));
        }
        let (b, l) = (x.size()[0], x.size()[1]);
        let offsets = Tensor::f_arange_start_step(0, b * l, l.max(1), (Kind::Int64, x.device()))?;
        self.forward_bag(&x.f_reshape([-1])?, &offsets)
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![param("weight", &self.weight)]
    }
}
