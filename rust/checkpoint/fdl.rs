//! floDl's `.fdl` checkpoint format, byte for byte (all little-endian):
//!
//! `b"FDLC" | u32 version | 32-byte structural hash (zeros = none) | u32 count`
//! then `count` entries, parameters first then buffers:
//! `u32 name_len | name (UTF-8) | u32 ndim | ndim × i64 dims | u8 dtype tag |
//! u64 byte_count | raw bytes`. Tags: 1 f16, 2 bf16, 3 f32, 4 f64, 5 i32,
//! 6 i64. Versions 1 and 2 share the layout (they differ in floDl's naming
//! era); version 2 is written. The file is gzipped iff its name ends in `.gz`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;

use tch::Kind;

use super::{
    bad_file, os_error, plan_file_load, read_bytes, tensor_bytes, write_atomic, LoadReport,
    RawEntry,
};
use crate::nn::Parameter;
use crate::tensor::kind_str;
use crate::{Error, Result};

pub const MAGIC: &[u8; 4] = b"FDLC";
/// The version written; versions 1..=FORMAT_VERSION are read.
pub const FORMAT_VERSION: u32 = 2;
pub const HASH_LEN: usize = 32;
/// Entry names are identifiers; a longer one is corruption.
const MAX_NAME_LEN: usize = 64 * 1024;
const MAX_NDIM: usize = 64;
/// u32 name_len + u32 ndim + u8 tag + u64 byte_count.
const MIN_ENTRY: usize = 17;
const KIND: &str = "checkpoint";

pub fn tag_of(k: Kind) -> Option<u8> {
    Some(match k {
        Kind::Half => 1,
        Kind::BFloat16 => 2,
        Kind::Float => 3,
        Kind::Double => 4,
        Kind::Int => 5,
        Kind::Int64 => 6,
        _ => return None,
    })
}

pub fn kind_of_tag(tag: u8) -> Option<Kind> {
    Some(match tag {
        1 => Kind::Half,
        2 => Kind::BFloat16,
        3 => Kind::Float,
        4 => Kind::Double,
        5 => Kind::Int,
        6 => Kind::Int64,
        _ => return None,
    })
}

/// A parsed file: entries borrow their data from the file's bytes.
pub(crate) struct Parsed<'a> {
    pub hash: [u8; HASH_LEN],
    pub entries: Vec<RawEntry<'a>>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(
        &mut self,
        n: usize,
        what: impl FnOnce() -> String,
    ) -> std::result::Result<&'a [u8], String> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(format!(
                "truncated: {} needs {n} bytes at offset {} but only {left} remain (file is {} bytes)",
                what(),
                self.pos,
                self.buf.len()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> std::result::Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

fn check_magic_version(c: &mut Cursor<'_>) -> std::result::Result<u32, String> {
    let magic = c.take(4, || "the magic".into())?;
    if magic != MAGIC {
        return Err(format!(
            "not a .fdl checkpoint: bad magic {magic:?} (expected \"FDLC\")"
        ));
    }
    c.u32(|| "the version".into())
}

/// Parses and validates every byte of a `.fdl` file; the error text says
/// what is wrong (the caller adds the file name).
pub(crate) fn parse(buf: &[u8]) -> std::result::Result<Parsed<'_>, String> {
    let mut c = Cursor { buf, pos: 0 };
    let version = check_magic_version(&mut c)?;
    if version == 0 || version > FORMAT_VERSION {
        return Err(format!(
            "unsupported checkpoint version {version} (this build reads 1 to {FORMAT_VERSION})"
        ));
    }
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(c.take(HASH_LEN, || "the structural hash".into())?);
    let count = c.u32(|| "the entry count".into())? as usize;
    let left = buf.len() - c.pos;
    if count > left / MIN_ENTRY {
        return Err(format!(
            "the header claims {count} entries but only {left} bytes follow (at least {MIN_ENTRY} per entry): truncated or corrupt"
        ));
    }
    let mut entries = Vec::with_capacity(count);
    let mut names = HashSet::new();
    for i in 0..count {
        let nl = c.u32(|| format!("entry {i}'s name length"))? as usize;
        if nl > MAX_NAME_LEN {
            return Err(format!(
                "entry {i}: name length {nl} exceeds {MAX_NAME_LEN}: corrupt"
            ));
        }
        let nb = c.take(nl, || format!("entry {i}'s name"))?;
        let name = std::str::from_utf8(nb)
            .map_err(|_| format!("entry {i}: the name is not valid UTF-8: corrupt"))?
            .to_string();
        let ndim = c.u32(|| format!("entry {i} ('{name}') rank"))? as usize;
        if ndim > MAX_NDIM {
            return Err(format!(
                "entry {i} ('{name}'): rank {ndim} exceeds {MAX_NDIM}: corrupt"
            ));
        }
        let mut dims = Vec::with_capacity(ndim);
        for d in 0..ndim {
            let v = c.u64(|| format!("entry {i} ('{name}') dim {d}"))? as i64;
            if v < 0 {
                return Err(format!(
                    "entry {i} ('{name}'): negative dimension {v}: corrupt"
                ));
            }
            dims.push(v);
        }
        let tag = c.take(1, || format!("entry {i} ('{name}') dtype tag"))?[0];
        let kind = kind_of_tag(tag).ok_or_else(|| {
            format!(
                "entry {i} ('{name}'): unknown dtype tag {tag} (known: 1 f16, 2 bf16, 3 f32, 4 f64, 5 i32, 6 i64)"
            )
        })?;
        let byte_count = c.u64(|| format!("entry {i} ('{name}') byte count"))?;
        let expected = dims
            .iter()
            .try_fold(kind.elt_size_in_bytes() as u64, |acc, &d| {
                acc.checked_mul(d as u64)
            });
        if expected != Some(byte_count) {
            return Err(format!(
                "entry {i} ('{name}'): byte count {byte_count} does not match shape {dims:?} of {} ({} bytes): corrupt",
                kind_str(kind),
                expected.map_or("overflowing".to_string(), |e| e.to_string())
            ));
        }
        let data = c.take(byte_count as usize, || format!("entry {i} ('{name}') data"))?;
        if !names.insert(name.clone()) {
            return Err(format!(
                "entry {i}: the name '{name}' appears twice: corrupt"
            ));
        }
        entries.push(RawEntry {
            name,
            dims,
            kind,
            data,
        });
    }
    if c.pos != buf.len() {
        return Err(format!(
            "{} unexpected bytes after the last of {count} entries: corrupt or a wrong entry count",
            buf.len() - c.pos
        ));
    }
    Ok(Parsed { hash, entries })
}

fn hex_decode(hex: &str) -> Result<[u8; HASH_LEN]> {
    let bad = || Error::Value(format!("structural hash '{hex}' is not 64 hex characters"));
    if hex.len() != 2 * HASH_LEN || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; HASH_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes one entry's header and data.
fn write_entry(
    w: &mut dyn Write,
    name: &str,
    dims: &[i64],
    tag: u8,
    data: &[u8],
) -> std::io::Result<()> {
    w.write_all(&(name.len() as u32).to_le_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&(dims.len() as u32).to_le_bytes())?;
    for d in dims {
        w.write_all(&d.to_le_bytes())?;
    }
    w.write_all(&[tag])?;
    w.write_all(&(data.len() as u64).to_le_bytes())?;
    w.write_all(data)
}

fn write_header(w: &mut dyn Write, hash: &[u8; HASH_LEN], count: usize) -> std::io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(hash)?;
    w.write_all(&(count as u32).to_le_bytes())
}

/// Saves `params` then `buffers` (floDl names) atomically. `hash` is the
/// graph's structural hash (64 hex chars); `None` writes zeros.
pub fn save_checkpoint_file(
    path: &Path,
    params: &[Parameter],
    buffers: &[Parameter],
    hash: Option<&str>,
) -> Result<()> {
    let params = crate::nn::flodl_names(shallow(params));
    let all: Vec<&Parameter> = params.iter().chain(buffers).collect();
    super::check_unique_names(KIND, path, &all)?;
    // Every entry is checked before the file is created.
    let mut tags = Vec::with_capacity(all.len());
    for p in &all {
        let k = p.tensor.f_kind()?;
        let tag = tag_of(k).ok_or_else(|| {
            Error::DType(format!(
                "checkpoint '{}': entry '{}' is {}, which .fdl cannot store (float16, bfloat16, float32, float64, int32, int64); use safetensors",
                path.display(),
                p.name,
                kind_str(k)
            ))
        })?;
        if p.name.len() > MAX_NAME_LEN || p.tensor.dim() > MAX_NDIM {
            return Err(Error::Value(format!(
                "checkpoint '{}': entry '{}' has a name over {MAX_NAME_LEN} bytes or more than {MAX_NDIM} dims",
                path.display(),
                p.name
            )));
        }
        tags.push(tag);
    }
    if all.len() > u32::MAX as usize {
        return Err(Error::Value(format!(
            "checkpoint '{}': {} entries exceed the format's limit",
            path.display(),
            all.len()
        )));
    }
    let hash = match hash {
        Some(h) => hex_decode(h)?,
        None => [0u8; HASH_LEN],
    };
    let werr = |e| os_error("write", path, e);
    write_atomic(path, |w| {
        write_header(w, &hash, all.len()).map_err(werr)?;
        for (p, tag) in all.iter().zip(&tags) {
            let data = tensor_bytes(&p.tensor)?;
            write_entry(w, &p.name, &p.tensor.size(), *tag, &data).map_err(werr)?;
        }
        Ok(())
    })
}

/// New handles on `ps` (the caller keeps its list).
pub(crate) fn shallow(ps: &[Parameter]) -> Vec<Parameter> {
    ps.iter()
        .map(|p| Parameter {
            name: p.name.clone(),
            tensor: p.tensor.shallow_clone(),
        })
        .collect()
}

pub(crate) fn read_parsed<T>(path: &Path, f: impl FnOnce(Parsed<'_>) -> Result<T>) -> Result<T> {
    let bytes = read_bytes(KIND, path)?;
    let parsed = parse(&bytes).map_err(|m| bad_file(KIND, path, m))?;
    f(parsed)
}

/// Loads by exact name into `params` and `buffers`. With `hash` (the
/// model's), a file whose non-zero hash differs is refused. Everything is
/// validated before the first value is written.
pub fn load_checkpoint_file(
    path: &Path,
    params: &[Parameter],
    buffers: &[Parameter],
    hash: Option<&str>,
) -> Result<LoadReport> {
    let expected = hash.map(hex_decode).transpose()?;
    read_parsed(path, |parsed| {
        if let Some(model) = expected {
            let zero = [0u8; HASH_LEN];
            if parsed.hash != zero && model != zero && parsed.hash != model {
                return Err(bad_file(
                    KIND,
                    path,
                    format!(
                        "checkpoint architecture mismatch: the file was saved from graph {} but this graph is {} (structural hashes differ); load without the hash check to match by name, or migrate the checkpoint",
                        &hex_encode(&parsed.hash)[..8],
                        &hex_encode(&model)[..8]
                    ),
                ));
            }
        }
        let params = crate::nn::flodl_names(shallow(params));
        let targets: Vec<&Parameter> = params.iter().chain(buffers).collect();
        plan_file_load(KIND, path, &parsed.entries, &targets)?.apply()
    })
}

/// Entry names in file order (the whole file is validated).
pub fn checkpoint_keys(path: &Path) -> Result<Vec<String>> {
    read_parsed(path, |p| {
        Ok(p.entries.into_iter().map(|e| e.name).collect())
    })
}

/// The version field (1: floDl 0.1 naming, 2: floDl 0.2+), read from the
/// first 8 bytes only.
pub fn checkpoint_version(path: &Path) -> Result<u32> {
    let f = std::fs::File::open(path).map_err(|e| os_error("read", path, e))?;
    let mut head = Vec::with_capacity(8);
    let r = if super::is_gz(path) {
        flate2::read::GzDecoder::new(f)
            .take(8)
            .read_to_end(&mut head)
    } else {
        f.take(8).read_to_end(&mut head)
    };
    r.map_err(|e| bad_file(KIND, path, format!("cannot read the header ({e})")))?;
    let mut c = Cursor { buf: &head, pos: 0 };
    check_magic_version(&mut c).map_err(|m| bad_file(KIND, path, m))
}

/// Writes already-parsed entries under new names (migration output: v2,
/// zero hash).
pub(crate) fn write_entries(path: &Path, entries: &[(&str, &RawEntry<'_>)]) -> Result<()> {
    let werr = |e| os_error("write", path, e);
    write_atomic(path, |w| {
        write_header(w, &[0u8; HASH_LEN], entries.len()).map_err(werr)?;
        for (name, e) in entries {
            let tag = tag_of(e.kind).ok_or_else(|| Error::DType("unreachable dtype".into()))?;
            write_entry(w, name, &e.dims, tag, e.data).map_err(werr)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn named(name: &str, t: Tensor) -> Parameter {
        Parameter {
            name: name.into(),
            tensor: t,
        }
    }

    #[test]
    fn round_trip_and_every_truncation() {
        let dir = std::env::temp_dir().join(format!("ft_fdl_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.fdl");
        let src = vec![
            named(
                "a/w",
                Tensor::from_slice(&[1.5f32, -2.0, 3.25]).view([3, 1]),
            ),
            named("a/i", Tensor::from_slice(&[7i64, -9])),
        ];
        let hash = "ab".repeat(32);
        save_checkpoint_file(&path, &src, &[], Some(&hash)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"FDLC");
        assert_eq!(&bytes[8..40], &[0xab; 32]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[0].dims, vec![3, 1]);
        for k in 0..bytes.len() {
            assert!(parse(&bytes[..k]).is_err(), "prefix {k} parsed");
        }
        let dst = vec![
            named(
                "a/w",
                Tensor::zeros([3, 1], (Kind::Double, tch::Device::Cpu)),
            ),
            named("a/i", Tensor::zeros([2], (Kind::Int64, tch::Device::Cpu))),
        ];
        let r = load_checkpoint_file(&path, &dst, &[], Some(&hash)).unwrap();
        assert_eq!(r.loaded, vec!["a/w", "a/i"]);
        assert_eq!(
            Vec::<f64>::try_from(dst[0].tensor.view([-1])).unwrap(),
            vec![1.5, -2.0, 3.25]
        );
        let other = "cd".repeat(32);
        let err = load_checkpoint_file(&path, &dst, &[], Some(&other)).unwrap_err();
        assert!(err.to_string().contains("architecture mismatch"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tags_match_flodl() {
        for (k, t) in [
            (Kind::Half, 1),
            (Kind::BFloat16, 2),
            (Kind::Float, 3),
            (Kind::Double, 4),
            (Kind::Int, 5),
            (Kind::Int64, 6),
        ] {
            assert_eq!(tag_of(k), Some(t));
            assert_eq!(kind_of_tag(t), Some(k));
        }
        assert_eq!(kind_of_tag(7), None);
        assert_eq!(tag_of(Kind::Bool), None);
    }
}
