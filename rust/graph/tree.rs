//! Graph trees: labeled child graphs addressed by dotted paths
//! ("encoder.scan.hidden"), freezing and thawing by path.

use std::sync::Arc;

use tch::Tensor;

use super::exec::{dedup_names, Graph};
use crate::nn::{Module, Parameter};
use crate::{Error, Result};

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Subgraph,
    Tag,
}

/// A resolved path: the graph it lives in, and either that graph (a
/// subgraph path) or a tag inside it.
pub enum Resolved {
    Graph(Arc<dyn Module>),
    Tag(Arc<dyn Module>, String),
}

impl Graph {
    /// Labeled child graphs: (label, node module).
    pub fn tree_children(&self) -> Vec<(String, Arc<dyn Module>)> {
        self.unique_modules()
            .iter()
            .filter_map(|(_, m)| {
                m.as_graph()
                    .and_then(|g| g.label().map(|l| l.to_string()))
                    .map(|l| (l, m.clone()))
            })
            .collect()
    }

    fn child(&self, label: &str) -> Option<Arc<dyn Module>> {
        self.tree_children()
            .into_iter()
            .find(|(l, _)| l == label)
            .map(|(_, m)| m)
    }

    /// Resolves `path` from `me` (the module holding this graph).
    pub fn resolve(me: &Arc<dyn Module>, path: &str) -> Result<Resolved> {
        let segs: Vec<&str> = path.split('.').collect();
        if path.is_empty() || segs.iter().any(|s| s.is_empty()) {
            return Err(Error::Key(format!("invalid path '{path}'")));
        }
        let mut cur = me.clone();
        for (k, seg) in segs.iter().enumerate() {
            let g = cur.as_graph().ok_or_else(|| {
                Error::Key(format!("path '{path}': '{seg}' is not inside a graph"))
            })?;
            let last = k + 1 == segs.len();
            if let Some(c) = g.child(seg) {
                if last {
                    return Ok(Resolved::Graph(c));
                }
                cur = c;
                continue;
            }
            if last && g.tag_node(seg).is_some() {
                // Tags inside a child are hidden when internal.
                if k > 0 && g.is_internal(seg) {
                    return Err(Error::Key(format!(
                        "path '{path}': tag '{seg}' is internal to its graph"
                    )));
                }
                return Ok(Resolved::Tag(cur.clone(), seg.to_string()));
            }
            let children: Vec<String> = g.tree_children().into_iter().map(|(l, _)| l).collect();
            return Err(Error::Key(format!(
                "path '{path}': no child graph or tag '{seg}' (children: {children:?}, tags: {:?})",
                g.tag_names()
            )));
        }
        Ok(Resolved::Graph(cur))
    }

    pub fn validate_path(me: &Arc<dyn Module>, path: &str) -> Result<PathKind> {
        Ok(match Self::resolve(me, path)? {
            Resolved::Graph(_) => PathKind::Subgraph,
            Resolved::Tag(..) => PathKind::Tag,
        })
    }

    /// Parameters under `path` with the target's own names (a subgraph's
    /// named_parameters, or `tag/raw_name` for a tagged node's module).
    pub fn named_parameters_at(me: &Arc<dyn Module>, path: &str) -> Result<Vec<Parameter>> {
        match Self::resolve(me, path)? {
            Resolved::Graph(m) => Ok(m
                .as_graph()
                .map(|g| g.named_parameters())
                .unwrap_or_default()),
            Resolved::Tag(m, tag) => {
                let g = m
                    .as_graph()
                    .ok_or_else(|| Error::Key(format!("path '{path}' is not in a graph")))?;
                let idx = g
                    .tag_node(&tag)
                    .ok_or_else(|| Error::Key(format!("unknown tag '{tag}'")))?;
                let ps = g.nodes()[idx]
                    .module()
                    .map(|m| m.parameters())
                    .unwrap_or_default();
                Ok(dedup_names(ps)
                    .into_iter()
                    .map(|p| Parameter {
                        name: format!("{tag}/{}", p.name),
                        tensor: p.tensor,
                    })
                    .collect())
            }
        }
    }

    pub fn parameters_at(me: &Arc<dyn Module>, path: &str) -> Result<Vec<Tensor>> {
        Ok(Self::named_parameters_at(me, path)?
            .into_iter()
            .map(|p| p.tensor)
            .collect())
    }

    /// Sets requires_grad on every parameter under `path`.
    pub fn set_frozen(me: &Arc<dyn Module>, path: &str, frozen: bool) -> Result<usize> {
        let ps = Self::parameters_at(me, path)?;
        for p in &ps {
            let mut p = p.shallow_clone();
            let _ = p.f_requires_grad_(!frozen)?;
        }
        Ok(ps.len())
    }

    /// True only when `path` has parameters and all are frozen.
    pub fn is_frozen(me: &Arc<dyn Module>, path: &str) -> Result<bool> {
        let ps = Self::parameters_at(me, path)?;
        Ok(!ps.is_empty() && ps.iter().all(|p| !p.requires_grad()))
    }

    /// The child graph at a subgraph path.
    pub fn subgraph(me: &Arc<dyn Module>, path: &str) -> Result<Arc<Graph>> {
        match Self::resolve(me, path)? {
            Resolved::Graph(m) => m
                .into_graph()
                .ok_or_else(|| Error::Key(format!("path '{path}' is not a graph"))),
            Resolved::Tag(..) => Err(Error::Key(format!(
                "path '{path}' names a tag, not a subgraph"
            ))),
        }
    }

    /// An indented outline of the tree: labels, node counts, parameter counts.
    pub fn tree_summary(&self) -> String {
        let mut out = String::new();
        self.summary_into(&mut out, 0, self.label().unwrap_or("root"));
        out
    }

    fn summary_into(&self, out: &mut String, depth: usize, name: &str) {
        let n_params: i64 = self
            .parameters()
            .iter()
            .map(|p| p.tensor.numel() as i64)
            .sum();
        let frozen = {
            let ps = self.parameters();
            !ps.is_empty() && ps.iter().all(|p| !p.tensor.requires_grad())
        };
        out.push_str(&format!(
            "{}{name}: {} nodes, {n_params} params{}{}\n",
            "  ".repeat(depth),
            self.nodes().len(),
            if frozen { " (frozen)" } else { "" },
            if self.tag_names().is_empty() {
                String::new()
            } else {
                format!(", tags {:?}", self.tag_names())
            }
        ));
        for (label, m) in self.tree_children() {
            if let Some(g) = m.as_graph() {
                g.summary_into(out, depth + 1, &label);
            }
        }
    }
}
