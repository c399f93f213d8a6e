//! floDl's structural hash: SHA-256 over node ids, module names, parameter
//! and buffer names with shapes, nested graph hashes, edges, tags, inputs and
//! outputs (labels, dtypes and devices excluded), so the same architecture
//! hashes alike in floDl and here and checkpoints can check it.
//!
//! The bytes, in order (integers little-endian, `\0` a zero byte):
//! 1. Each node in topological order: `id\0`; when it holds a module,
//!    `name\0` (composites loop/gate/switch say `module`, a map its body's
//!    name), then its parameters sorted stably by raw name (the names the
//!    module itself reports, repeats kept: a nested graph or gate reports
//!    `weight, bias, weight, bias...`), each `P name\0 dims(i64)...`, then its
//!    buffers the same way with `B`, then `G` + the 64 hex chars of a nested
//!    graph's (or a map's graph body's) hash.
//! 2. `EDGES`, then per edge in creation order `from\0 from_port\0 to\0
//!    to_port\0` (ports: `output`, `input`, `input_<i>`, `ref_<tag>`).
//! 3. `TAGS`, then per tag sorted by name `name\0 node_index(u64)
//!    port_index(u64)` (node index in creation order; port always 0).
//! 4. `INPUTS`, then `name\0 node_id\0 input\0` for the entry (`input`) and
//!    each `.input(name)` node in declaration order.
//! 5. `OUTPUTS`, then `output\0 node_id\0 output\0`.
//!
//! The digest is written as 64 lowercase hex chars.

use sha2::{Digest, Sha256};

use super::exec::Graph;
use super::node::{NodeOp, Source};
use crate::nn::Parameter;

/// Raw names as the module reports them (a nested graph or a gate repeats
/// `weight`, `bias`, ...: no `_0`/`_1` suffixes here, those belong to
/// checkpoint naming only), stably sorted so repeats keep module order.
fn shaped(h: &mut Sha256, kind: u8, ps: Vec<Parameter>) {
    let mut ps: Vec<(String, Vec<i64>)> =
        ps.into_iter().map(|p| (p.name, p.tensor.size())).collect();
    ps.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, dims) in ps {
        h.update([kind]);
        h.update(name.as_bytes());
        h.update([0]);
        for d in dims {
            h.update(d.to_le_bytes());
        }
    }
}

pub fn structural_hash(g: &Graph) -> String {
    let mut h = Sha256::new();
    let nodes = g.nodes();
    for &i in g.order() {
        let node = &nodes[i];
        h.update(node.id.as_bytes());
        h.update([0]);
        if let Some(m) = node.module() {
            h.update(m.name().as_bytes());
            h.update([0]);
            shaped(&mut h, b'P', crate::nn::flodl_names(m.parameters()));
            shaped(&mut h, b'B', m.buffers());
            if let Some(child) = m.nested_hash() {
                h.update(b"G");
                h.update(child.as_bytes());
            }
        }
    }
    h.update(b"EDGES");
    for (from, fp, to, tp) in &g.spec.edges {
        for part in [nodes[*from].id.as_str(), fp, nodes[*to].id.as_str(), tp] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    h.update(b"TAGS");
    let mut tags = g.spec.tags.clone();
    tags.sort();
    for (name, idx) in tags {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((idx as u64).to_le_bytes());
        h.update(0u64.to_le_bytes());
    }
    h.update(b"INPUTS");
    let mut inputs: Vec<(String, String)> = Vec::new();
    for node in nodes {
        for p in &node.inputs {
            if p.source == Source::Input(0) {
                inputs.push(("input".into(), node.id.clone()));
            }
        }
    }
    for node in nodes {
        if let NodeOp::Input(k) = node.op {
            if let Some(name) = g.input_names().get(k - 1) {
                inputs.push((name.clone(), node.id.clone()));
            }
        }
    }
    for (name, id) in inputs {
        for part in [name.as_str(), id.as_str(), "input"] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    h.update(b"OUTPUTS");
    for part in ["output", nodes[g.spec.output].id.as_str(), "output"] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
