//! The commands of `sigma`, one module each (`compress` and `decompress` share [`codec`];
//! `pack`, `unpack` and `get` share [`archive`]; `stats` measures what `pack` does).
//!
//! A command takes its parsed options and returns `Ok(())` or a [`CliError`](crate::error::CliError)
//! for `main` to print; it never exits the process itself, so temporary files are cleaned up by
//! their destructors.

pub mod archive;
pub mod codec;
pub mod cost;
pub mod demo;
pub mod inspect;
pub mod ls;
pub mod stats;
pub mod train;
pub mod verify;

use std::collections::HashMap;

use sigmalang::CoderConfig;
use sigmalang::{GlyphType, PoolConfig, Primitive, SemanticTree, Tier};

/// The encoders' memory configuration: buffer pooling on (the library's default), or off with
/// `--no-pool`. Output never depends on it.
pub fn encoder_config(no_pool: bool) -> CoderConfig {
    if no_pool {
        CoderConfig::default().pool(PoolConfig::disabled())
    } else {
        CoderConfig::default()
    }
}

/// Counts over a semantic tree, shared by `inspect` and `demo`.
#[derive(Debug, Default)]
pub struct TreeStats {
    /// All nodes.
    pub nodes: usize,
    /// PRIMITIVE nodes (leaves).
    pub leaves: usize,
    /// COMPOSITE nodes.
    pub composites: usize,
    /// Depth of the deepest node (the root is 0).
    pub max_depth: usize,
    /// Nodes per tier: existential, domain, learned.
    pub tiers: [usize; 3],
    /// Nodes per primitive and glyph type.
    pub by_primitive: HashMap<(Primitive, GlyphType), usize>,
}

impl TreeStats {
    /// Counts the nodes of `tree`.
    pub fn of(tree: &SemanticTree<'_>) -> TreeStats {
        let mut s = TreeStats::default();
        tree.walk(|node, depth| {
            s.nodes += 1;
            s.max_depth = s.max_depth.max(depth);
            match node.glyph.glyph_type {
                GlyphType::Composite => s.composites += 1,
                _ => s.leaves += 1,
            }
            s.tiers[tier_index(node.glyph.primitive.tier())] += 1;
            *s.by_primitive
                .entry((node.glyph.primitive, node.glyph.glyph_type))
                .or_default() += 1;
        });
        s
    }

    /// The `n` most frequent primitives among nodes of glyph type `ty`, most frequent first
    /// (ties by name).
    pub fn top(&self, ty: GlyphType, n: usize) -> Vec<(&'static str, usize)> {
        let mut v: Vec<_> = self
            .by_primitive
            .iter()
            .filter(|((_, t), _)| *t == ty)
            .map(|((p, _), &c)| (p.name(), c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    /// The one-line summary `inspect` ends with.
    pub fn summary_line(&self) -> String {
        format!(
            "{} nodes: {} composite, {} leaves, max depth {}; tiers: existential {}, domain {}, learned {}",
            self.nodes,
            self.composites,
            self.leaves,
            self.max_depth,
            self.tiers[0],
            self.tiers[1],
            self.tiers[2],
        )
    }
}

/// Index of a tier in [`TreeStats::tiers`].
pub fn tier_index(tier: Tier) -> usize {
    match tier {
        Tier::Existential => 0,
        Tier::Domain => 1,
        Tier::Learned => 2,
    }
}

/// The tier's name in output.
pub fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Existential => "existential",
        Tier::Domain => "domain",
        Tier::Learned => "learned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_a_small_text() {
        let tree = sigmalang::parse(b"Hello world!\n");
        let s = TreeStats::of(&tree);
        assert_eq!(s.nodes, s.leaves + s.composites);
        assert_eq!(s.nodes, tree.nodes().len());
        assert_eq!(s.tiers.iter().sum::<usize>(), s.nodes);
        assert!(s.leaves >= 3);
        assert!(s.top(GlyphType::Composite, 10).contains(&("DOCUMENT", 1)));
    }
}
