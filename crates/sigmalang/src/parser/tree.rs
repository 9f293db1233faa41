//! The semantic tree: an arena of nodes over borrowed input bytes.

use std::ops::Range;

use crate::glyph::{Glyph, GlyphType};
use crate::primitive::Primitive;

/// Index of a node in its [`SemanticTree`].
pub type NodeId = u32;

/// A node of the semantic tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The node's glyph: COMPOSITE for structure, PRIMITIVE for leaves.
    pub glyph: Glyph,
    /// The bytes of the input the node covers.
    pub span: Range<usize>,
    /// Child nodes, left to right; their spans tile `span` exactly. Empty for leaves.
    pub children: Vec<NodeId>,
}

/// The semantic tree of one input: node 0 is the root (`DOCUMENT`).
#[derive(Clone, Debug)]
pub struct SemanticTree<'a> {
    input: &'a [u8],
    nodes: Vec<Node>,
}

impl<'a> SemanticTree<'a> {
    /// The root node.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node with id `id`.
    ///
    /// # Panics
    /// If `id` is not a node of this tree.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// All nodes, in creation order (children before their parent; the root first).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The input the tree was parsed from.
    pub fn input(&self) -> &'a [u8] {
        self.input
    }

    /// The exact bytes a node covers.
    pub fn bytes(&self, node: &Node) -> &'a [u8] {
        &self.input[node.span.clone()]
    }

    /// The leaves, left to right.
    pub fn leaves(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut stack = vec![0 as NodeId];
        while let Some(id) = stack.pop() {
            let node = self.node(id);
            if node.children.is_empty() {
                if !node.span.is_empty() {
                    out.push(node);
                }
            } else {
                stack.extend(node.children.iter().rev());
            }
        }
        out
    }

    /// The leaves' bytes concatenated: always equal to the input.
    pub fn flatten(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.input.len());
        for leaf in self.leaves() {
            out.extend_from_slice(self.bytes(leaf));
        }
        out
    }

    /// Depth-first walk: calls `visit(node, depth)` for every node, parents before children.
    pub fn walk(&self, mut visit: impl FnMut(&Node, usize)) {
        let mut stack = vec![(0 as NodeId, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            let node = self.node(id);
            visit(node, depth);
            stack.extend(node.children.iter().rev().map(|&c| (c, depth + 1)));
        }
    }

    /// Checks the tree's invariants: every composite's children tile its span, leaves have no
    /// children, and the root covers the whole input. Returns a description of the first
    /// violation.
    pub fn check(&self) -> Result<(), String> {
        let root = self.root();
        if root.span != (0..self.input.len()) {
            return Err(format!(
                "root covers {:?}, input is {} bytes",
                root.span,
                self.input.len()
            ));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let is_composite = node.glyph.glyph_type == GlyphType::Composite;
            if !is_composite && !node.children.is_empty() {
                return Err(format!("leaf {i} has children"));
            }
            if node.children.is_empty() {
                continue;
            }
            let mut at = node.span.start;
            for &c in &node.children {
                let child = &self.nodes[c as usize];
                if child.span.start != at {
                    return Err(format!(
                        "node {i}: child {c} starts at {}, expected {at}",
                        child.span.start
                    ));
                }
                at = child.span.end;
            }
            if at != node.span.end {
                return Err(format!(
                    "node {i}: children end at {at}, span ends at {}",
                    node.span.end
                ));
            }
        }
        Ok(())
    }
}

/// Builds a tree bottom-up; the root is placed at index 0 by [`Builder::finish`].
pub(crate) struct Builder<'a> {
    pub(crate) input: &'a [u8],
    nodes: Vec<Node>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Builder<'a> {
        // Slot 0 is reserved for the root.
        let root = Node {
            glyph: Glyph {
                glyph_type: GlyphType::Composite,
                primitive: Primitive::domain("DOCUMENT"),
            },
            span: 0..input.len(),
            children: Vec::new(),
        };
        Builder {
            input,
            nodes: vec![root],
        }
    }

    pub(crate) fn leaf(&mut self, primitive: Primitive, start: usize, end: usize) -> NodeId {
        debug_assert!(start < end && end <= self.input.len());
        self.push(Node {
            glyph: Glyph {
                glyph_type: GlyphType::Primitive,
                primitive,
            },
            span: start..end,
            children: Vec::new(),
        })
    }

    /// A composite over `children`, which must be contiguous and non-empty.
    pub(crate) fn composite(&mut self, primitive: Primitive, children: Vec<NodeId>) -> NodeId {
        let start = self.nodes[children[0] as usize].span.start;
        let end = self.nodes[*children.last().expect("non-empty") as usize]
            .span
            .end;
        self.push(Node {
            glyph: Glyph {
                glyph_type: GlyphType::Composite,
                primitive,
            },
            span: start..end,
            children,
        })
    }

    /// Discards every node created after `mark` (used when a tentative parse fails).
    pub(crate) fn truncate(&mut self, mark: usize) {
        self.nodes.truncate(mark);
    }

    pub(crate) fn primitive_of(&self, id: NodeId) -> Primitive {
        self.nodes[id as usize].glyph.primitive
    }

    pub(crate) fn bytes_of(&self, id: NodeId) -> &'a [u8] {
        &self.input[self.nodes[id as usize].span.clone()]
    }

    pub(crate) fn mark(&self) -> usize {
        self.nodes.len()
    }

    fn push(&mut self, node: Node) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(node);
        id
    }

    pub(crate) fn finish(mut self, children: Vec<NodeId>) -> SemanticTree<'a> {
        self.nodes[0].children = children;
        SemanticTree {
            input: self.input,
            nodes: self.nodes,
        }
    }
}
