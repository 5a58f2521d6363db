//! What changed since the last sync: the operations of one transaction, in the order they must be applied,
//! and the frontends whose endpoints changed (for conntrack cleanup and for reporting).

use std::net::SocketAddr;

use crate::plan::FrontendState;
use crate::shape::{Element, PickChain, Value};
use crate::types::{Family, Frontend, Protocol};

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create (or refill) a shared pick chain with its rules; precedes the elements that jump to it.
    AddChain(PickChain),
    DeleteElement(Element),
    AddElement(Element, Value),
    /// Delete a pick chain no element jumps to any more; follows the deletion of those elements.
    DeleteChain(PickChain),
}

/// A frontend that appeared, disappeared, or now leads to other endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendChange {
    pub frontend: Frontend,
    pub before: Option<FrontendState>,
    pub after: Option<FrontendState>,
}

impl FrontendChange {
    /// Endpoints this frontend led to before and no longer does.
    pub fn removed_endpoints(&self) -> Vec<SocketAddr> {
        let after = self
            .after
            .as_ref()
            .map(|s| s.endpoints.as_slice())
            .unwrap_or(&[]);
        self.before
            .as_ref()
            .map(|s| {
                s.endpoints
                    .iter()
                    .filter(|e| !after.contains(e))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether UDP conntrack entries of this frontend must be cleared, as kube-proxy does: an endpoint went
    /// away (entries to it would blackhole), or the frontend had no endpoint before (entries created while it
    /// rejected or dropped would keep doing so).
    pub fn needs_udp_conntrack_cleanup(&self) -> bool {
        if self.frontend.protocol != Protocol::Udp {
            return false;
        }
        let had_none = self.before.as_ref().is_none_or(|s| s.endpoints.is_empty());
        let has_some = self.after.as_ref().is_some_and(|s| !s.endpoints.is_empty());
        !self.removed_endpoints().is_empty() || (had_none && has_some)
    }
}

/// The difference between what the kernel was last given and the model now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub family: Family,
    /// In transaction order: chain additions, element deletions, element additions, chain deletions. A map
    /// element whose value changes is a deletion then an addition (nftables cannot replace a value).
    pub ops: Vec<Op>,
    pub frontends: Vec<FrontendChange>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.frontends.is_empty()
    }
}
