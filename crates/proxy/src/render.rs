//! Text in `nft -f` syntax: the whole table for a model (cold start, `svcplane agent --dump`, golden tests)
//! and the transaction for a diff. A netlink executor performs the same operations in the same order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::Config;
use crate::diff::{Diff, Op};
use crate::model::ProxyModel;
use crate::shape::{self, element_text, Element, PickChain, SetName, Value};
use crate::types::Family;

/// How [`ruleset`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace our table atomically: `nft -f` creates it if absent, deletes it and defines it anew in one
    /// transaction, so packets see either the old table or the new one.
    Replace,
    /// Only the table, for reading (`--dump`).
    Dump,
}

/// Elements per `add element` statement: long statements are fine for nft, but bounded lines keep a dump
/// readable and the parser's memory flat.
const ELEMENTS_PER_STATEMENT: usize = 1000;

/// The whole table of a model.
pub fn ruleset(model: &ProxyModel, mode: Mode) -> String {
    let config = model.config();
    let family = config.family;
    let (fam, table) = (family.nft(), config.table.as_str());
    let mut out = String::new();
    if mode == Mode::Replace {
        let _ = writeln!(out, "table {fam} {table}\ndelete table {fam} {table}");
    }
    let _ = writeln!(out, "table {fam} {table} {{");
    let _ = writeln!(
        out,
        "\tcomment \"svcplane: Services of this node (managed by svcplane agent)\""
    );
    for (name, definition) in shape::config_sets(family) {
        let elements = config_elements(config, name);
        if elements.is_empty() {
            let _ = writeln!(out, "\tset {name} {{ {definition}; }}");
        } else {
            let _ = writeln!(
                out,
                "\tset {name} {{ {definition}; elements = {{ {} }}; }}",
                elements.join(", ")
            );
        }
    }
    for set in SetName::ALL {
        let kind = if set.is_map() { "map" } else { "set" };
        let _ = writeln!(
            out,
            "\t{kind} {} {{ {}; }}",
            set.name(),
            set.definition(family)
        );
    }
    for chain in shape::chains(family) {
        let _ = writeln!(out, "\tchain {} {{", chain.name);
        if let Some(hook) = chain.hook {
            let _ = writeln!(out, "\t\t{hook}");
        }
        for rule in &chain.rules {
            let _ = writeln!(out, "\t\t{rule}");
        }
        let _ = writeln!(out, "\t}}");
    }
    for chain in model.pick_chains() {
        let _ = writeln!(out, "\tchain {} {{", chain.name());
        for rule in chain.rules(family) {
            let _ = writeln!(out, "\t\t{rule}");
        }
        let _ = writeln!(out, "\t}}");
    }
    let _ = writeln!(out, "}}");
    // Elements after the table, so the chains they jump to exist when they are added.
    write_elements(&mut out, family, table, "add", &model.elements());
    out
}

/// The transaction of a diff.
pub fn transaction(config: &Config, diff: &Diff) -> String {
    let (fam, table) = (diff.family.nft(), config.table.as_str());
    let mut out = String::new();
    let mut deletes: Vec<(Element, Value)> = Vec::new();
    let mut adds: Vec<(Element, Value)> = Vec::new();
    let mut chain_deletes: Vec<PickChain> = Vec::new();
    for op in &diff.ops {
        match op {
            Op::AddChain(chain) => {
                let name = chain.name();
                // `add` succeeds on an existing chain and the flush makes its content exactly ours.
                let _ = writeln!(
                    out,
                    "add chain {fam} {table} {name}\nflush chain {fam} {table} {name}"
                );
                for rule in chain.rules(diff.family) {
                    let _ = writeln!(out, "add rule {fam} {table} {name} {rule}");
                }
            }
            Op::DeleteElement(element) => deletes.push((*element, Value::None)),
            Op::AddElement(element, value) => adds.push((*element, *value)),
            Op::DeleteChain(chain) => chain_deletes.push(*chain),
        }
    }
    write_elements(&mut out, diff.family, table, "delete", &deletes);
    write_elements(&mut out, diff.family, table, "add", &adds);
    for chain in chain_deletes {
        let _ = writeln!(out, "delete chain {fam} {table} {}", chain.name());
    }
    out
}

fn write_elements(
    out: &mut String,
    family: Family,
    table: &str,
    verb: &str,
    elements: &[(Element, Value)],
) {
    let mut by_set: BTreeMap<SetName, Vec<String>> = BTreeMap::new();
    for (element, value) in elements {
        by_set
            .entry(element.set)
            .or_default()
            .push(element_text(element, value));
    }
    for (set, texts) in by_set {
        for chunk in texts.chunks(ELEMENTS_PER_STATEMENT) {
            let _ = writeln!(
                out,
                "{verb} element {} {table} {} {{ {} }}",
                family.nft(),
                set.name(),
                chunk.join(", ")
            );
        }
    }
}

fn config_elements(config: &Config, set: &str) -> Vec<String> {
    let cidrs = match set {
        "cluster-cidrs" => &config.cluster_cidrs,
        "service-cidrs" => &config.service_cidrs,
        _ => return Vec::new(),
    };
    let mut nets: Vec<_> = config.family_cidrs(cidrs).map(|n| n.trunc()).collect();
    nets.sort();
    nets.dedup();
    nets.iter().map(|n| n.to_string()).collect()
}
