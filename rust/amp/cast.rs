//! In-place parameter casting (`Module.to(dtype)` for bare parameters).

use tch::{Kind, Tensor};

use crate::tensor::{grad_of, is_float, kind_str};
use crate::{Error, Result};

/// Casts parameters to `dtype` in place, keeping each tensor's identity
/// (`p.data = p.data.to(dtype)`), and their gradients too, as
/// `Module.to(dtype)` does. Parameters already in `dtype` are left alone.
pub fn cast_parameters(params: &[Tensor], dtype: Kind) -> Result<()> {
    if !is_float(dtype) {
        return Err(Error::DType(format!(
            "cast_parameters: dtype must be floating point, got {}",
            kind_str(dtype)
        )));
    }
    for (i, p) in params.iter().enumerate() {
        let k = p.f_kind()?;
        if !is_float(k) {
            return Err(Error::DType(format!(
                "cast_parameters: params[{i}] is {}, expected a floating-point tensor",
                kind_str(k)
            )));
        }
    }
    let _guard = tch::no_grad_guard();
    for p in params {
        if p.f_kind()? == dtype {
            continue;
        }
        let data = p.f_detach()?.f_to_kind(dtype)?;
        let mut h = p.shallow_clone();
        h.f_set_data(&data)?;
        if let Some(g) = grad_of(p) {
            let gd = g.f_to_kind(dtype)?;
            let mut gh = g.shallow_clone();
            gh.f_set_data(&gd)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn cast_keeps_identity() {
        let p = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let q = p.shallow_clone();
        cast_parameters(&[p], Kind::Double).unwrap();
        assert_eq!(q.kind(), Kind::Double);
        assert!(q.requires_grad());
    }
}
