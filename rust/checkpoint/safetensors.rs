//! The safetensors format (huggingface/safetensors), implemented here:
//! `u64 LE header length N | N bytes of JSON | data`. The JSON object maps
//! each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
//! (offsets relative to the data), plus an optional `"__metadata__"` map of
//! strings. Tensors must tile the data exactly, as the reference reader
//! requires. The header is padded with spaces to a multiple of 8 bytes.

use std::path::Path;

use serde_json::{Map, Value};
use tch::Kind;

use super::{
    bad_file, check_unique_names, os_error, plan_file_load, read_bytes, tensor_bytes, write_atomic,
    LoadReport, RawEntry, Source,
};
use crate::nn::Parameter;
use crate::tensor::kind_str;
use crate::{Error, Result};

const KIND: &str = "safetensors file";

/// The `__metadata__` string map, as (key, value) pairs.
pub type Metadata = Vec<(String, String)>;
/// The reference implementation refuses larger headers.
const MAX_HEADER: u64 = 100_000_000;

fn dtype_code(k: Kind) -> Option<&'static str> {
    Some(match k {
        Kind::Half => "F16",
        Kind::BFloat16 => "BF16",
        Kind::Float => "F32",
        Kind::Double => "F64",
        Kind::Int8 => "I8",
        Kind::Int16 => "I16",
        Kind::Int => "I32",
        Kind::Int64 => "I64",
        Kind::Uint8 => "U8",
        Kind::Bool => "BOOL",
        Kind::Float8e5m2 => "F8_E5M2",
        Kind::Float8e4m3fn => "F8_E4M3",
        _ => return None,
    })
}

fn kind_of_code(s: &str) -> Option<Kind> {
    Some(match s {
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "F32" => Kind::Float,
        "F64" => Kind::Double,
        "I8" => Kind::Int8,
        "I16" => Kind::Int16,
        "I32" => Kind::Int,
        "I64" => Kind::Int64,
        "U8" => Kind::Uint8,
        "BOOL" => Kind::Bool,
        "F8_E5M2" => Kind::Float8e5m2,
        "F8_E4M3" => Kind::Float8e4m3fn,
        _ => return None,
    })
}

/// Saves `tensors` (in this order in the data) with optional string metadata,
/// atomically.
pub fn save_safetensors_file(
    path: &Path,
    tensors: &[Parameter],
    metadata: Option<&[(String, String)]>,
) -> Result<()> {
    let refs: Vec<&Parameter> = tensors.iter().collect();
    check_unique_names(KIND, path, &refs)?;
    let mut header = Map::new();
    if let Some(md) = metadata {
        let m: Map<String, Value> = md
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut offset: u64 = 0;
    for p in tensors {
        if p.name == "__metadata__" {
            return Err(Error::Value(format!(
                "{KIND} '{}': '__metadata__' is reserved and cannot name a tensor",
                path.display()
            )));
        }
        let k = p.tensor.f_kind()?;
        let code = dtype_code(k).ok_or_else(|| {
            Error::DType(format!(
                "{KIND} '{}': tensor '{}' is {}, which safetensors cannot store",
                path.display(),
                p.name,
                kind_str(k)
            ))
        })?;
        let n = (p.tensor.numel() * k.elt_size_in_bytes()) as u64;
        let mut e = Map::new();
        e.insert("dtype".into(), Value::from(code));
        e.insert("shape".into(), Value::from(p.tensor.size()));
        e.insert("data_offsets".into(), Value::from(vec![offset, offset + n]));
        header.insert(p.name.clone(), Value::Object(e));
        offset += n;
    }
    let mut json = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| Error::Value(format!("{KIND} '{}': {e}", path.display())))?;
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let werr = |e| os_error("write", path, e);
    write_atomic(path, |w| {
        w.write_all(&(json.len() as u64).to_le_bytes())
            .map_err(werr)?;
        w.write_all(&json).map_err(werr)?;
        for p in tensors {
            w.write_all(&tensor_bytes(&p.tensor)?).map_err(werr)?;
        }
        Ok(())
    })
}

struct ParsedSt<'a> {
    entries: Vec<RawEntry<'a>>,
    metadata: Metadata,
}

fn parse(buf: &[u8]) -> std::result::Result<ParsedSt<'_>, String> {
    if buf.len() < 8 {
        return Err(format!(
            "truncated: {} bytes, shorter than the 8-byte header length",
            buf.len()
        ));
    }
    let mut lb = [0u8; 8];
    lb.copy_from_slice(&buf[..8]);
    let n = u64::from_le_bytes(lb);
    if n > MAX_HEADER || n > (buf.len() - 8) as u64 {
        return Err(format!(
            "header length {n} exceeds the {} bytes that follow: truncated or not a safetensors file",
            buf.len() - 8
        ));
    }
    let n = n as usize;
    let header: Value = serde_json::from_slice(&buf[8..8 + n])
        .map_err(|e| format!("the JSON header is invalid ({e}): corrupt"))?;
    let Value::Object(header) = header else {
        return Err("the JSON header is not an object: corrupt".into());
    };
    let data = &buf[8 + n..];
    let mut metadata = Vec::new();
    let mut spans: Vec<(u64, u64, RawEntry<'_>)> = Vec::new();
    for (name, v) in header {
        if name == "__metadata__" {
            let Value::Object(m) = v else {
                return Err("'__metadata__' is not an object of strings".into());
            };
            for (k, v) in m {
                let Value::String(s) = v else {
                    return Err(format!("metadata '{k}' is not a string"));
                };
                metadata.push((k, s));
            }
            continue;
        }
        let bad = |what: &str| format!("tensor '{name}': {what}: corrupt");
        let dtype = v
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no dtype"))?;
        let kind = kind_of_code(dtype)
            .ok_or_else(|| format!("tensor '{name}': unsupported dtype '{dtype}'"))?;
        let dims = v
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .filter(|&d| d <= i64::MAX as u64)
                    .map(|d| d as i64)
            })
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| bad("the shape is not a list of non-negative integers"))?;
        let offs = v
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| bad("data_offsets is not [begin, end]"))?;
        let (b, e) = offs;
        if b > e || e > data.len() as u64 {
            return Err(format!(
                "tensor '{name}': data_offsets [{b}, {e}] lie outside the {} data bytes: truncated or corrupt",
                data.len()
            ));
        }
        let expected = dims
            .iter()
            .try_fold(kind.elt_size_in_bytes() as u64, |acc, &d| {
                acc.checked_mul(d as u64)
            });
        if expected != Some(e - b) {
            return Err(format!(
                "tensor '{name}': {} bytes do not hold shape {dims:?} of {dtype}: corrupt",
                e - b
            ));
        }
        let entry = RawEntry {
            name,
            dims,
            kind,
            data: &data[b as usize..e as usize],
        };
        spans.push((b, e, entry));
    }
    spans.sort_by_key(|s| (s.0, s.1));
    let mut at = 0u64;
    for (b, e, entry) in &spans {
        if *b != at {
            return Err(format!(
                "tensor '{}' starts at data byte {b}, expected {at}: the tensors do not tile the data (corrupt)",
                entry.name
            ));
        }
        at = *e;
    }
    if at != data.len() as u64 {
        return Err(format!(
            "the tensors cover {at} of {} data bytes: corrupt",
            data.len()
        ));
    }
    Ok(ParsedSt {
        entries: spans.into_iter().map(|s| s.2).collect(),
        metadata,
    })
}

fn read_parsed<T>(path: &Path, f: impl FnOnce(ParsedSt<'_>) -> Result<T>) -> Result<T> {
    let bytes = read_bytes(KIND, path)?;
    let parsed = parse(&bytes).map_err(|m| bad_file(KIND, path, m))?;
    f(parsed)
}

/// Every tensor (CPU, the file's dtype) in data order, and the metadata.
pub fn read_safetensors_file(path: &Path) -> Result<(Vec<Parameter>, Metadata)> {
    read_parsed(path, |p| {
        let ts = p
            .entries
            .iter()
            .map(|e| {
                Ok(Parameter {
                    name: e.name.clone(),
                    tensor: e.value()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((ts, p.metadata))
    })
}

/// The `__metadata__` map (empty when absent).
pub fn safetensors_metadata(path: &Path) -> Result<Metadata> {
    read_parsed(path, |p| Ok(p.metadata))
}

/// Loads by exact name into `targets` (shape must match, dtype is cast),
/// after validating the whole file.
pub fn load_safetensors_into(path: &Path, targets: &[Parameter]) -> Result<LoadReport> {
    read_parsed(path, |p| {
        let t: Vec<&Parameter> = targets.iter().collect();
        plan_file_load(KIND, path, &p.entries, &t)?.apply()
    })
}
