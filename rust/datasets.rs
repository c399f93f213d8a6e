//! Parsers for well-known data sets from bytes already in memory, and
//! (`folder`) readers that find their standard files in a folder. Nothing is
//! ever downloaded. Malformed bytes are an `Error::Value` naming the part at
//! fault; the folder readers turn that into a `Checkpoint` error naming the
//! file.

mod folder;
mod pickle;

pub use folder::{read_cifar10, read_mnist, read_text, Found};

use std::collections::BTreeSet;
use std::io::Read;

use tch::{Kind, Tensor};

use crate::{Error, Result};

/// Gunzips `bytes` when they start with the gzip magic, else borrows them.
fn maybe_gunzip<'a>(bytes: &'a [u8], what: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::Value(format!("{what}: invalid gzip data ({e})")))?;
        Ok(out.into())
    } else {
        Ok(bytes.into())
    }
}

fn be_u32(b: &[u8], at: usize, what: &str) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| Error::Value(format!("{what}: truncated header ({} bytes)", b.len())))
}

/// IDX magic numbers: 0x0000 0x08 (unsigned byte) then the dimension count.
const IDX_IMAGES: u32 = 0x0803;
const IDX_LABELS: u32 = 0x0801;

/// Parses an IDX file of unsigned bytes with the given magic; returns the
/// dimensions and the payload.
fn parse_idx<'a>(b: &'a [u8], magic: u32, ndim: usize, what: &str) -> Result<(Vec<i64>, &'a [u8])> {
    let m = be_u32(b, 0, what)?;
    if m != magic {
        return Err(Error::Value(format!(
            "{what}: bad IDX magic number {m} (expected {magic}, unsigned bytes in {ndim} dimension{})",
            if ndim == 1 { "" } else { "s" }
        )));
    }
    let dims = (0..ndim)
        .map(|i| be_u32(b, 4 + 4 * i, what).map(|d| d as i64))
        .collect::<Result<Vec<_>>>()?;
    let header = 4 + 4 * ndim;
    let expected: i64 = dims.iter().product();
    let payload = &b[header..];
    if payload.len() as i64 != expected {
        return Err(Error::Value(format!(
            "{what}: dimensions {dims:?} need {expected} bytes of data, found {}",
            payload.len()
        )));
    }
    Ok((dims, payload))
}

/// Pixel bytes to float32 in [0, 1].
fn unit_float(pixels: Tensor) -> Result<Tensor> {
    Ok(pixels.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?)
}

/// MNIST: images [N, 1, 28, 28] float32 in [0, 1], labels [N] int64.
pub struct Mnist {
    pub images: Tensor,
    pub labels: Tensor,
}

impl Mnist {
    /// Parses the IDX image file (magic 2051) and label file (magic 2049),
    /// gzipped or not.
    pub fn parse(images: &[u8], labels: &[u8]) -> Result<Mnist> {
        let (images, labels) = Self::parse_u8(images, "MNIST images", labels, "MNIST labels")?;
        Ok(Mnist {
            images: unit_float(images)?,
            labels,
        })
    }

    /// As `parse`, but the images stay uint8 [N, 1, H, W]; `img_what` and
    /// `lab_what` name the two inputs in errors.
    pub fn parse_u8(
        images: &[u8],
        img_what: &str,
        labels: &[u8],
        lab_what: &str,
    ) -> Result<(Tensor, Tensor)> {
        let img = maybe_gunzip(images, img_what)?;
        let lab = maybe_gunzip(labels, lab_what)?;
        let (idims, ipix) = parse_idx(&img, IDX_IMAGES, 3, img_what)?;
        let (ldims, lvals) = parse_idx(&lab, IDX_LABELS, 1, lab_what)?;
        if idims[0] != ldims[0] {
            return Err(Error::Value(format!(
                "MNIST: {} images but {} labels ({img_what}, {lab_what})",
                idims[0], ldims[0]
            )));
        }
        let images = Tensor::f_from_slice(ipix)?.f_reshape([idims[0], 1, idims[1], idims[2]])?;
        let labels = Tensor::f_from_slice(lvals)?.f_to_kind(Kind::Int64)?;
        Ok((images, labels))
    }
}

/// CIFAR-10: images [N, 3, 32, 32] float32 in [0, 1], labels [N] int64.
pub struct Cifar10 {
    pub images: Tensor,
    pub labels: Tensor,
}

/// CIFAR-10 records accumulated batch by batch: labels and pixel bytes.
#[derive(Default)]
pub(crate) struct CifarRecords {
    labels: Vec<i64>,
    pixels: Vec<u8>,
}

impl CifarRecords {
    /// Appends one binary batch: records of 1 label byte + 3072 pixel bytes
    /// (red, green, blue planes of 32×32).
    fn push_binary(&mut self, b: &[u8], what: &str) -> Result<()> {
        if b.is_empty() || b.len() % Cifar10::RECORD != 0 {
            return Err(Error::Value(format!(
                "{what}: {} bytes is not a whole number of {}-byte records",
                b.len(),
                Cifar10::RECORD
            )));
        }
        for rec in b.chunks_exact(Cifar10::RECORD) {
            self.push(rec[0] as i64, &rec[1..], what)?;
        }
        Ok(())
    }

    /// Appends one image of 3072 bytes and its label (checked to be 0-9).
    fn push(&mut self, label: i64, pixels: &[u8], what: &str) -> Result<()> {
        if !(0..=9).contains(&label) {
            return Err(Error::Value(format!(
                "{what}: label {label} is not a class (0-9)"
            )));
        }
        self.labels.push(label);
        self.pixels.extend_from_slice(pixels);
        Ok(())
    }

    /// uint8 images [N, 3, 32, 32] and int64 labels [N].
    fn into_tensors(self) -> Result<(Tensor, Tensor)> {
        let n = self.labels.len() as i64;
        Ok((
            Tensor::f_from_slice(&self.pixels)?.f_reshape([n, 3, 32, 32])?,
            Tensor::f_from_slice(&self.labels)?,
        ))
    }
}

impl Cifar10 {
    pub const CLASS_NAMES: [&'static str; 10] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];
    const RECORD: usize = 1 + Self::PIXELS;
    const PIXELS: usize = 3 * 32 * 32;

    /// Parses binary batches (gzipped or not).
    pub fn parse(batches: &[&[u8]]) -> Result<Cifar10> {
        if batches.is_empty() {
            return Err(Error::Value("CIFAR-10: no batches given".into()));
        }
        let mut recs = CifarRecords::default();
        for (i, raw) in batches.iter().enumerate() {
            let what = format!("CIFAR-10 batch {i}");
            recs.push_binary(&maybe_gunzip(raw, &what)?, &what)?;
        }
        let (images, labels) = recs.into_tensors()?;
        Ok(Cifar10 {
            images: unit_float(images)?,
            labels,
        })
    }
}
/// Character-level text: non-overlapping windows of `seq_len` characters
/// (`data`) and the same windows shifted by one (`targets`), both [N, seq_len]
/// int64; the vocabulary is the sorted set of characters.
pub struct Shakespeare {
    pub data: Tensor,
    pub targets: Tensor,
    pub vocab: Vec<char>,
}

impl Shakespeare {
    pub fn parse(text: &str, seq_len: usize) -> Result<Shakespeare> {
        if seq_len == 0 {
            return Err(Error::Value(
                "Shakespeare: seq_len must be at least 1".into(),
            ));
        }
        let chars: Vec<char> = text.chars().collect();
        if chars.len() < seq_len + 1 {
            return Err(Error::Value(format!(
                "Shakespeare: {} characters are too few for one window of seq_len {seq_len} (needs {})",
                chars.len(),
                seq_len + 1
            )));
        }
        let vocab: Vec<char> = chars
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let idx: Vec<i64> = chars
            .iter()
            .map(|c| vocab.binary_search(c).map(|i| i as i64).unwrap_or(0))
            .collect();
        let n = (chars.len() - 1) / seq_len;
        let mut data = Vec::with_capacity(n * seq_len);
        let mut targets = Vec::with_capacity(n * seq_len);
        for w in 0..n {
            let s = w * seq_len;
            data.extend_from_slice(&idx[s..s + seq_len]);
            targets.extend_from_slice(&idx[s + 1..s + seq_len + 1]);
        }
        let shape = [n as i64, seq_len as i64];
        Ok(Shakespeare {
            data: Tensor::f_from_slice(&data)?.f_reshape(shape)?,
            targets: Tensor::f_from_slice(&targets)?.f_reshape(shape)?,
            vocab,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn char_to_idx(&self, c: char) -> Option<usize> {
        self.vocab.binary_search(&c).ok()
    }

    pub fn idx_to_char(&self, i: usize) -> Option<char> {
        self.vocab.get(i).copied()
    }

    /// Indices back to text; an index outside the vocabulary is an error.
    pub fn decode(&self, idx: &[i64]) -> Result<String> {
        idx.iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.idx_to_char(i))
                    .ok_or_else(|| {
                        Error::Value(format!(
                            "decode: index {i} is outside the vocabulary (size {})",
                            self.vocab.len()
                        ))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn mnist_roundtrip_and_errors() {
        let img = idx(2051, &[2, 2, 2], &[0, 255, 51, 0, 1, 2, 3, 4]);
        let lab = idx(2049, &[2], &[7, 3]);
        let m = Mnist::parse(&img, &lab).expect("parse");
        assert_eq!(m.images.size(), [2, 1, 2, 2]);
        assert!((m.images.double_value(&[0, 0, 0, 1]) - 1.0).abs() < 1e-7);
        assert_eq!(Vec::<i64>::try_from(&m.labels).expect("vec"), [7, 3]);
        let bad = idx(2050, &[2, 2, 2], &[0; 8]);
        assert!(Mnist::parse(&bad, &lab)
            .err()
            .expect("err")
            .to_string()
            .contains("magic"));
        let short = idx(2051, &[2, 2, 2], &[0; 7]);
        assert!(Mnist::parse(&short, &lab)
            .err()
            .expect("err")
            .to_string()
            .contains("need 8 bytes"));
    }

    #[test]
    fn shakespeare_windows() {
        let s = Shakespeare::parse("abcabcab", 3).expect("parse");
        assert_eq!(s.vocab, ['a', 'b', 'c']);
        assert_eq!(s.data.size(), [2, 3]);
        assert_eq!(
            Vec::<i64>::try_from(&s.targets.flatten(0, -1)).expect("vec"),
            [1, 2, 0, 1, 2, 0]
        );
        assert_eq!(s.decode(&[2, 0]).expect("decode"), "ca");
    }
}
