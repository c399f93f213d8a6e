//! Finds and reads the standard files of MNIST, CIFAR-10 and a text corpus in
//! a folder (ours or torchvision's layout). A missing file is an `Error::Io`
//! listing what was looked for and where; a malformed one is an
//! `Error::Checkpoint` naming the file and what was expected.

use std::path::{Path, PathBuf};

use tch::Tensor;

use super::{pickle, CifarRecords, Mnist};
use crate::{Error, Result};

/// Tensors read from a folder and the files they came from.
pub struct Found {
    /// uint8 images [N, C, H, W].
    pub images: Tensor,
    /// int64 labels [N].
    pub labels: Tensor,
    pub files: Vec<PathBuf>,
}

const NEVER_DOWNLOADS: &str = "ferrotorch never downloads data sets: put the files there yourself";

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("cannot read '{}': {e}", path.display())))
}

/// A parse failure in a file becomes a Checkpoint error (malformed data).
fn malformed(e: Error) -> Error {
    match e {
        Error::Value(m) => Error::Checkpoint(m),
        other => other,
    }
}

fn check_root(root: &Path, name: &str) -> Result<()> {
    if root.is_dir() {
        Ok(())
    } else {
        Err(Error::Io(format!(
            "{name}: the folder '{}' does not exist; {NEVER_DOWNLOADS}",
            root.display()
        )))
    }
}

fn list_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| format!("'{}'", d.display()))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// `dir/name`, else `dir/name.gz`, if either is a file.
fn raw_or_gz(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// One of a pair found without the other.
fn only_one(split: &str, have: &Path, want: &str) -> Error {
    Error::Io(format!(
        "MNIST ({split}): found '{}' but not {want} (or {want}.gz) beside it; {NEVER_DOWNLOADS}",
        have.display()
    ))
}

/// MNIST's IDX files (raw or .gz) from `root` or torchvision's
/// `root/MNIST/raw`: images uint8 [N, 1, 28, 28], labels int64 [N].
pub fn read_mnist(root: &Path, train: bool) -> Result<Found> {
    check_root(root, "MNIST")?;
    let split = if train { "train" } else { "t10k" };
    let names = [
        format!("{split}-images-idx3-ubyte"),
        format!("{split}-labels-idx1-ubyte"),
    ];
    let dirs = [root.to_path_buf(), root.join("MNIST").join("raw")];
    for dir in &dirs {
        let (img, lab) = (raw_or_gz(dir, &names[0]), raw_or_gz(dir, &names[1]));
        match (img, lab) {
            (Some(img), Some(lab)) => {
                let (ib, lb) = (read(&img)?, read(&lab)?);
                let iw = img.display().to_string();
                let lw = lab.display().to_string();
                let (images, labels) = Mnist::parse_u8(&ib, &iw, &lb, &lw).map_err(malformed)?;
                return Ok(Found {
                    images,
                    labels,
                    files: vec![img, lab],
                });
            }
            (Some(have), None) => return Err(only_one(split, &have, &names[1])),
            (None, Some(have)) => return Err(only_one(split, &have, &names[0])),
            (None, None) => {}
        }
    }
    Err(Error::Io(format!(
        "MNIST ({split}) not found: looked for {} and {} (raw or .gz) in {}; {NEVER_DOWNLOADS}",
        names[0],
        names[1],
        list_dirs(&dirs)
    )))
}

/// CIFAR-10's batches from `root`, `root/cifar-10-batches-bin` (binary
/// `*.bin`) or `root/cifar-10-batches-py` (python pickles, read without
/// running code): images uint8 [N, 3, 32, 32], labels int64 [N].
pub fn read_cifar10(root: &Path, train: bool) -> Result<Found> {
    check_root(root, "CIFAR-10")?;
    let stems: Vec<String> = if train {
        (1..=5).map(|i| format!("data_batch_{i}")).collect()
    } else {
        vec!["test_batch".into()]
    };
    let split = if train { "train" } else { "test" };
    // (folder, binary?) in the order they are tried.
    let layouts = [
        (root.to_path_buf(), true),
        (root.to_path_buf(), false),
        (root.join("cifar-10-batches-bin"), true),
        (root.join("cifar-10-batches-py"), false),
    ];
    let mut partial = None;
    for (dir, binary) in &layouts {
        let files: Vec<PathBuf> = stems
            .iter()
            .map(|s| {
                dir.join(if *binary {
                    format!("{s}.bin")
                } else {
                    s.clone()
                })
            })
            .collect();
        let missing: Vec<&PathBuf> = files.iter().filter(|f| !f.is_file()).collect();
        if missing.is_empty() {
            let mut recs = CifarRecords::default();
            for f in &files {
                let bytes = read(f)?;
                let what = f.display().to_string();
                let res = if *binary {
                    recs.push_binary(&bytes, &what)
                } else {
                    push_pickle(&mut recs, &bytes, &what)
                };
                res.map_err(malformed)?;
            }
            let (images, labels) = recs.into_tensors()?;
            return Ok(Found {
                images,
                labels,
                files,
            });
        }
        if missing.len() < files.len() && partial.is_none() {
            partial = Some(format!(
                "CIFAR-10 ({split}): '{}' is incomplete, missing {}",
                dir.display(),
                missing
                    .iter()
                    .map(|m| m.file_name().unwrap_or_default().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let (first, last) = (&stems[0], &stems[stems.len() - 1]);
    let names = if first == last {
        first.clone()
    } else {
        format!("{first} .. {last}")
    };
    Err(Error::Io(format!(
        "{}CIFAR-10 ({split}) not found: looked for {names} as binary batches (.bin) in '{}' and '{}', \
         and as python pickles (no extension) in '{}' and '{}'; {NEVER_DOWNLOADS}",
        partial.map(|p| format!("{p}. ")).unwrap_or_default(),
        root.display(),
        root.join("cifar-10-batches-bin").display(),
        root.display(),
        root.join("cifar-10-batches-py").display(),
    )))
}

/// Appends one python batch: a dict with `data` (uint8 [N, 3072]) and
/// `labels` (N ints).
fn push_pickle(recs: &mut CifarRecords, bytes: &[u8], what: &str) -> Result<()> {
    if !bytes.starts_with(&[0x80]) {
        return Err(Error::Value(format!(
            "{what}: not a python pickle (expected the protocol byte 0x80 first; \
             binary batches are named *.bin)"
        )));
    }
    let v = pickle::load(bytes, what)?;
    let field = |k: &str| {
        v.get(k).ok_or_else(|| {
            Error::Value(format!(
                "{what}: expected a dict with 'data' and 'labels', '{k}' is missing"
            ))
        })
    };
    let (shape, pixels) = field("data")?.ndarray_u8(&format!("{what} ['data']"))?;
    let labels = field("labels")?.ints(&format!("{what} ['labels']"))?;
    if shape.len() != 2 || shape[1] != 3072 || shape[0] != labels.len() as i64 {
        return Err(Error::Value(format!(
            "{what}: 'data' has shape {shape:?} and there are {} labels (expected [N, 3072] with N = the label count)",
            labels.len()
        )));
    }
    for (lab, px) in labels.iter().zip(pixels.chunks_exact(3072)) {
        recs.push(*lab, px, what)?;
    }
    Ok(())
}

/// A text corpus: the file itself, or in a folder `input.txt` (char-rnn's
/// tiny Shakespeare), `tinyshakespeare.txt` or `shakespeare.txt`.
pub fn read_text(path: &Path) -> Result<(String, PathBuf)> {
    let file = if path.is_dir() {
        let names = ["input.txt", "tinyshakespeare.txt", "shakespeare.txt"];
        names
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::Io(format!(
                    "no text found in '{}': looked for {}; {NEVER_DOWNLOADS}",
                    path.display(),
                    names.join(", ")
                ))
            })?
    } else {
        path.to_path_buf()
    };
    let bytes = read(&file)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Checkpoint(format!(
            "'{}': expected UTF-8 text, invalid byte at offset {}",
            file.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok((text, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_and_files_are_io_errors() {
        let dir = std::env::temp_dir().join(format!("ft_ds_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let e = read_mnist(&dir, true).err().expect("missing");
        assert!(matches!(e, Error::Io(_)));
        assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
        let e = read_cifar10(&dir.join("nope"), false)
            .err()
            .expect("missing");
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::fs::remove_dir_all(&dir).expect("rm");
    }
}
