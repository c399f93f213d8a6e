//! floDl's `migrate_checkpoint`: rewrites a `.fdl` file under a model's
//! current names when only names changed (tags added, nodes renumbered).

use std::path::Path;

use tch::Kind;

use super::fdl::{read_parsed, write_entries};
use crate::nn::Parameter;
use crate::Result;

/// `unchanged`: same name and shape; `remapped`: `(old, new)` matched by
/// shape and dtype; `dropped`: file entries no model name took; `missing`:
/// model names nothing matched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub unchanged: Vec<String>,
    pub remapped: Vec<(String, String)>,
    pub dropped: Vec<String>,
    pub missing: Vec<String>,
}

impl MigrateReport {
    /// True when every entry found a model name and every model name an entry.
    pub fn is_complete(&self) -> bool {
        self.dropped.is_empty() && self.missing.is_empty()
    }
}

impl std::fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let section = |f: &mut std::fmt::Formatter<'_>, title: &str, rows: Vec<String>| {
            if rows.is_empty() {
                return Ok(());
            }
            writeln!(f, "{title} ({}):", rows.len())?;
            rows.iter().try_for_each(|r| writeln!(f, "  {r}"))
        };
        section(f, "unchanged", self.unchanged.clone())?;
        section(
            f,
            "remapped",
            self.remapped
                .iter()
                .map(|(o, n)| format!("{o} -> {n}"))
                .collect(),
        )?;
        section(f, "dropped", self.dropped.clone())?;
        section(f, "missing", self.missing.clone())
    }
}

/// Reads `src` (validated in full), matches its entries to the model's
/// parameters then buffers, and writes `dst` (version 2, zero hash, model
/// order) atomically; `src == dst` is safe. Matching: (1) same name and
/// shape keeps the entry; (2) each model name still unmatched, in model
/// order, takes the first unused entry (file order) of equal shape and dtype.
pub fn migrate_checkpoint_file(
    src: &Path,
    dst: &Path,
    params: &[Parameter],
    buffers: &[Parameter],
) -> Result<MigrateReport> {
    let params = crate::nn::flodl_names(super::fdl::shallow(params));
    let targets: Vec<(String, Vec<i64>, Option<Kind>)> = params
        .iter()
        .chain(buffers)
        .map(|p| (p.name.clone(), p.tensor.size(), p.tensor.f_kind().ok()))
        .collect();
    read_parsed(src, |parsed| {
        let entries = &parsed.entries;
        let mut used = vec![false; entries.len()];
        // (model index, entry index)
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        let mut report = MigrateReport::default();
        let mut open = Vec::new();
        for (mi, (name, dims, _)) in targets.iter().enumerate() {
            match entries
                .iter()
                .position(|e| &e.name == name && &e.dims == dims)
            {
                Some(ci) => {
                    used[ci] = true;
                    chosen.push((mi, ci));
                    report.unchanged.push(name.clone());
                }
                None => open.push(mi),
            }
        }
        for mi in open {
            let (name, dims, kind) = &targets[mi];
            let found = entries
                .iter()
                .enumerate()
                .position(|(ci, e)| !used[ci] && &e.dims == dims && Some(e.kind) == *kind);
            match found {
                Some(ci) => {
                    used[ci] = true;
                    chosen.push((mi, ci));
                    report
                        .remapped
                        .push((entries[ci].name.clone(), name.clone()));
                }
                None => report.missing.push(name.clone()),
            }
        }
        report.dropped = entries
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(e, _)| e.name.clone())
            .collect();
        chosen.sort_by_key(|&(mi, _)| mi);
        let out: Vec<(&str, &super::RawEntry<'_>)> = chosen
            .iter()
            .map(|&(mi, ci)| (targets[mi].0.as_str(), &entries[ci]))
            .collect();
        write_entries(dst, &out)?;
        Ok(report)
    })
}
