//! Multi-head attention, batch first (floDl name `multihead_attention`).
//!
//! Parameters are torch's layout: a packed `in_proj_weight` [3E, E] (q, k, v
//! rows in that order), `in_proj_bias` [3E], `out_proj.weight` [E, E] and
//! `out_proj.bias` [E], so state dicts move between this module and
//! `torch.nn.MultiheadAttention` unchanged. floDl's initialisation is kept:
//! q, k, v and out weights are each xavier_uniform on their own [E, E] block,
//! drawn in that order; biases are zero. floDl's files name the blocks
//! `q_proj.weight, q_proj.bias, ..., out_proj.bias`: [`flodl_names`] splits
//! the packed tensors into those views at the file and hash boundary.
//!
//! The forward makes the ATen calls of torch's training path
//! (`F.multi_head_attention_forward` with `need_weights=True`, the default),
//! in its order and on its layouts, so outputs and gradients equal torch's
//! bit for bit.

use tch::{Device, Kind, Tensor};

use super::{check_kind, init, param, positive, Module, Parameter};
use crate::tensor::{kind_str, require_float, shape_str, SharedTensor};
use crate::{Error, Result};

pub struct MultiheadAttention {
    embed: i64,
    heads: i64,
    in_w: SharedTensor,
    in_b: Option<SharedTensor>,
    out_w: SharedTensor,
    out_b: Option<SharedTensor>,
}

impl MultiheadAttention {
    pub fn new(embed: i64, heads: i64, bias: bool, device: Device) -> Result<Self> {
        positive("MultiheadAttention", "embed_dim", embed)?;
        positive("MultiheadAttention", "num_heads", heads)?;
        if embed % heads != 0 {
            return Err(Error::Value(format!(
                "MultiheadAttention: embed_dim ({embed}) must be divisible by num_heads ({heads})"
            )));
        }
        // floDl's draws: q, k, v, out, one xavier_uniform [E, E] each.
        let mut w = (0..4)
            .map(|_| init::xavier_uniform(&[embed, embed], embed, embed, 1.0, device))
            .collect::<Result<Vec<_>>>()?;
        let out_w = w
            .pop()
            .ok_or_else(|| Error::Internal("no out_proj".into()))?;
        let in_w = Tensor::f_cat(&w, 0)?;
        let zeros = |n: i64| -> Result<SharedTensor> {
            let z = Tensor::f_zeros([n], (Kind::Float, device))?;
            Ok(SharedTensor::new(init::into_param(z)?))
        };
        Ok(MultiheadAttention {
            embed,
            heads,
            in_w: SharedTensor::new(init::into_param(in_w)?),
            in_b: bias.then(|| zeros(3 * embed)).transpose()?,
            out_w: SharedTensor::new(init::into_param(out_w)?),
            out_b: bias.then(|| zeros(embed)).transpose()?,
        })
    }

    fn check_qkv(&self, name: &str, t: &Tensor) -> Result<Vec<i64>> {
        require_float(t, &format!("{} {name}", self.describe()))?;
        let s = t.size();
        if s.len() != 3 || s[2] != self.embed {
            return Err(Error::Shape(format!(
                "{}: expected {name} of shape [batch, seq, {}], got {}",
                self.describe(),
                self.embed,
                shape_str(t)
            )));
        }
        check_kind(self, t, &self.in_w.handle())?;
        Ok(s)
    }

    /// torch's `_canonical_mask`: a bool mask (true = blocked) becomes −inf
    /// where true, a float mask is an addend as it is.
    fn additive(&self, name: &str, m: &Tensor, kind: Kind) -> Result<Tensor> {
        match m.f_kind()? {
            Kind::Bool => {
                let mut z = m.f_zeros_like()?.f_to_kind(kind)?;
                Ok(z.f_masked_fill_(m, f64::NEG_INFINITY)?)
            }
            k if crate::tensor::is_float(k) => Ok(m.shallow_clone()),
            k => Err(Error::DType(format!(
                "{}: {name} must be bool or floating point, got {}",
                self.describe(),
                kind_str(k)
            ))),
        }
    }

    /// torch's packed in-projection (`_in_projection_packed`) of the
    /// sequence-first q, k, v; `same_qk`/`same_kv` are torch's `is` tests.
    fn in_projection(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        same_qk: bool,
        same_kv: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let e = self.embed;
        let (w, b) = (
            &self.in_w.handle(),
            self.in_b.as_ref().map(SharedTensor::handle),
        );
        let b = b.as_ref();
        // proj.unflatten(-1, (n, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()
        let packed = |p: Tensor, n: i64| -> Result<Tensor> {
            Ok(p.f_unflatten(-1, [n, e])?
                .f_unsqueeze(0)?
                .f_transpose(0, -2)?
                .f_squeeze_dim(-2)?
                .f_contiguous()?)
        };
        if same_kv && same_qk {
            let proj = packed(q.f_linear(w, b)?, 3)?;
            Ok((
                proj.f_select(0, 0)?,
                proj.f_select(0, 1)?,
                proj.f_select(0, 2)?,
            ))
        } else if same_kv {
            let ws = w.f_split_with_sizes([e, 2 * e], 0)?;
            let bs = b.map(|b| b.f_split_with_sizes([e, 2 * e], 0)).transpose()?;
            let q = q.f_linear(&ws[0], bs.as_ref().map(|b| &b[0]))?;
            let kv = packed(k.f_linear(&ws[1], bs.as_ref().map(|b| &b[1]))?, 2)?;
            Ok((q, kv.f_select(0, 0)?, kv.f_select(0, 1)?))
        } else {
            let ws = w.f_chunk(3, 0)?;
            let bs = b.map(|b| b.f_chunk(3, 0)).transpose()?;
            let bi = |i: usize| bs.as_ref().map(|b| &b[i]);
            Ok((
                q.f_linear(&ws[0], bi(0))?,
                k.f_linear(&ws[1], bi(1))?,
                v.f_linear(&ws[2], bi(2))?,
            ))
        }
    }

    /// Attention of `q` [B, L, E] over `k`, `v` [B, S, E]. `attn_mask` is
    /// [L, S] or [B·heads, L, S]; `key_padding_mask` is [B, S]. Bool masks
    /// block true positions; float masks are added to the scores (torch).
    pub fn forward_ext(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        attn_mask: Option<&Tensor>,
        key_padding_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let qs = self.check_qkv("query", q)?;
        let ks = self.check_qkv("key", k)?;
        let vs = self.check_qkv("value", v)?;
        if ks != vs || ks[0] != qs[0] {
            return Err(Error::Shape(format!(
                "{}: key and value must have equal shapes with the query's batch, got query {:?}, key {:?}, value {:?}",
                self.describe(),
                qs,
                ks,
                vs
            )));
        }
        let (b, l, s, h, e) = (qs[0], qs[1], ks[1], self.heads, self.embed);
        let d = e / h;
        let kind = q.f_kind()?;
        let same_kv = crate::shim::is_same(k, v);
        let same_qk = same_kv && crate::shim::is_same(q, k);
        // Masks first, as torch checks them before projecting.
        let mut mask = match attn_mask {
            None => None,
            Some(m) => {
                let add = self.additive("attn_mask", m, kind)?;
                let ms = m.size();
                if ms == [l, s] {
                    Some(add.f_unsqueeze(0)?)
                } else if ms == [b * h, l, s] {
                    Some(add)
                } else {
                    return Err(Error::Shape(format!(
                        "{}: attn_mask must be [{l}, {s}] or [{}, {l}, {s}], got {}",
                        self.describe(),
                        b * h,
                        shape_str(m)
                    )));
                }
            }
        };
        if let Some(m) = key_padding_mask {
            if m.size() != [b, s] {
                return Err(Error::Shape(format!(
                    "{}: key_padding_mask must be [{b}, {s}], got {}",
                    self.describe(),
                    shape_str(m)
                )));
            }
            let kp = self
                .additive("key_padding_mask", m, kind)?
                .f_view([b, 1, 1, s])?
                .f_expand([-1, h, -1, -1], false)?
                .f_reshape([b * h, 1, s])?;
            mask = Some(match mask {
                None => kp,
                Some(am) => am.f_add(&kp)?,
            });
        }
        // Batch first: torch transposes to [seq, batch, E], keeping identities.
        let qt = q.f_transpose(1, 0)?;
        let kt = if same_qk {
            qt.shallow_clone()
        } else {
            k.f_transpose(1, 0)?
        };
        let vt = if same_kv {
            kt.shallow_clone()
        } else {
            v.f_transpose(1, 0)?
        };
        let (qp, kp, vp) = self.in_projection(&qt, &kt, &vt, same_qk, same_kv)?;
        let heads = |t: Tensor, n: i64| -> Result<Tensor> {
            Ok(t.f_view([n, b * h, d])?.f_transpose(0, 1)?)
        };
        let (qh, kh, vh) = (heads(qp, l)?, heads(kp, s)?, heads(vp, s)?);
        let scaled = qh.f_mul_scalar((1.0 / d as f64).sqrt())?;
        let kt = kh.f_transpose(-2, -1)?;
        let scores = match &mask {
            Some(m) => m.f_baddbmm(&scaled, &kt, 1, 1)?,
            None => scaled.f_bmm(&kt)?,
        };
        let attn = scores.f_softmax(-1, None::<Kind>)?;
        let out = attn
            .f_bmm(&vh)?
            .f_transpose(0, 1)?
            .f_contiguous()?
            .f_view([l * b, e])?
            .f_linear(
                &self.out_w.handle(),
                self.out_b.as_ref().map(SharedTensor::handle).as_ref(),
            )?
            .f_view([l, b, e])?;
        Ok(out.f_transpose(1, 0)?)
    }

    pub fn embed_dim(&self) -> i64 {
        self.embed
    }
    pub fn num_heads(&self) -> i64 {
        self.heads
    }
}

impl Module for MultiheadAttention {
    fn name(&self) -> &str {
        "multihead_attention"
    }
    fn describe(&self) -> String {
        format!("MultiheadAttention({}, heads={})", self.embed, self.heads)
    }
    /// Self-attention over [B, S, E].
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_ext(x, x, x, None, None)
    }
    fn parameters(&self) -> Vec<Parameter> {
        let mut v = vec![param("in_proj_weight", &self.in_w)];
        if let Some(b) = &self.in_b {
            v.push(param("in_proj_bias", b));
        }
        v.push(param("out_proj.weight", &self.out_w));
        if let Some(b) = &self.out_b {
            v.push(param("out_proj.bias", b));
        }
        v
    }
}

/// A name `{prefix}in_proj_{what}{suffix}` (prefix empty or ending in `/` or
/// `.`, suffix empty or floDl's repeat number `_N`): (prefix, suffix).
fn packed_name<'a>(name: &'a str, what: &str) -> Option<(&'a str, &'a str)> {
    let key = format!("in_proj_{what}");
    let at = name.rfind(&key)?;
    let (prefix, suffix) = (&name[..at], &name[at + key.len()..]);
    let prefix_ok = prefix.is_empty() || prefix.ends_with('/') || prefix.ends_with('.');
    let suffix_ok = suffix.is_empty()
        || suffix
            .strip_prefix('_')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
    (prefix_ok && suffix_ok).then_some((prefix, suffix))
}

/// floDl's names for attention parameters: each packed `in_proj_weight`
/// [3E, E] / `in_proj_bias` [3E] becomes its `q_proj`, `k_proj`, `v_proj`
/// blocks (views sharing its storage, so a file load writes into the packed
/// tensor), in floDl's order (q weight, q bias, k weight, ...). Every other
/// entry passes unchanged. Used where names meet floDl: `.fdl` files and the
/// structural hash.
pub fn flodl_names(ps: Vec<Parameter>) -> Vec<Parameter> {
    if !ps.iter().any(|p| p.name.contains("in_proj_")) {
        return ps;
    }
    let _g = tch::no_grad_guard(); // plain views: loads copy into them
                                   // The three row blocks, or None (another shape: the entry stays whole).
    let blocks = |t: &Tensor, rank: usize| -> Option<Vec<Tensor>> {
        let s = t.size();
        if s.len() != rank || s[0] % 3 != 0 {
            return None;
        }
        let n = s[0] / 3;
        (0..3).map(|i| t.f_narrow(0, i * n, n).ok()).collect()
    };
    let mut used = vec![false; ps.len()];
    let mut out = Vec::with_capacity(ps.len() + 4);
    for i in 0..ps.len() {
        if used[i] {
            continue;
        }
        let p = &ps[i];
        let split_w = packed_name(&p.name, "weight");
        let split_b = packed_name(&p.name, "bias");
        let ws = split_w.and_then(|_| blocks(&p.tensor, 2));
        let bs_alone = split_b.and_then(|_| blocks(&p.tensor, 1));
        if let (Some((pre, suf)), Some(ws)) = (split_w, ws) {
            // Its bias, if the same module has one (same prefix and suffix).
            let bias = ps.iter().enumerate().position(|(j, q)| {
                !used[j] && j != i && packed_name(&q.name, "bias") == Some((pre, suf))
            });
            let bs = bias.and_then(|j| blocks(&ps[j].tensor, 1).inspect(|_| used[j] = true));
            for (k, (w, proj)) in ws
                .into_iter()
                .zip(["q_proj", "k_proj", "v_proj"])
                .enumerate()
            {
                out.push(Parameter {
                    name: format!("{pre}{proj}.weight{suf}"),
                    tensor: w,
                });
                if let Some(bs) = &bs {
                    out.push(Parameter {
                        name: format!("{pre}{proj}.bias{suf}"),
                        tensor: bs[k].shallow_clone(),
                    });
                }
            }
        } else if let (Some((pre, suf)), Some(bs)) = (split_b, bs_alone) {
            for (b, proj) in bs.into_iter().zip(["q_proj", "k_proj", "v_proj"]) {
                out.push(Parameter {
                    name: format!("{pre}{proj}.bias{suf}"),
                    tensor: b,
                });
            }
        } else {
            out.push(Parameter {
                name: p.name.clone(),
                tensor: p.tensor.shallow_clone(),
            });
        }
        used[i] = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flodl_names_split_the_packed_projection_into_views() {
        let m = MultiheadAttention::new(4, 2, true, Device::Cpu).unwrap();
        let named: Vec<Parameter> = m
            .parameters()
            .into_iter()
            .map(|p| Parameter {
                name: format!("attn/{}_1", p.name),
                tensor: p.tensor,
            })
            .collect();
        let split = flodl_names(named);
        let names: Vec<&str> = split.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "attn/q_proj.weight_1",
                "attn/q_proj.bias_1",
                "attn/k_proj.weight_1",
                "attn/k_proj.bias_1",
                "attn/v_proj.weight_1",
                "attn/v_proj.bias_1",
                "attn/out_proj.weight_1",
                "attn/out_proj.bias_1",
            ]
        );
        // Views on the packed tensor: writing one writes the parameter.
        let _g = tch::no_grad_guard();
        let mut k = split[2].tensor.shallow_clone();
        let _ = k.fill_(7.0);
        let w = m.parameters()[0].tensor.shallow_clone();
        assert_eq!(
            w.narrow(0, 4, 4).sum(Kind::Float).double_value(&[]),
            7.0 * 16.0
        );
        assert_eq!(split[2].tensor.size(), [4, 4]);
    }

    #[test]
    fn self_attention_is_the_general_form_with_one_tensor() {
        let m = MultiheadAttention::new(8, 2, true, Device::Cpu).unwrap();
        let x = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        let y = m.forward(&x).unwrap();
        assert_eq!(y.size(), [2, 5, 8]);
        // Distinct tensors take the chunked projection: the same values up to rounding.
        let (k, v) = (x.copy(), x.copy());
        let z = m.forward_ext(&x, &k, &v, None, None).unwrap();
        assert!(y.allclose(&z, 1e-5, 1e-6, false));
    }
}
