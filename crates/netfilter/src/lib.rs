//! The nftables executor of the `proxy` model: it makes the kernel hold the table that a
//! [`proxy::ProxyModel`] describes, and applies its [`proxy::Diff`]s, talking NETLINK_NETFILTER itself.
//!
//! This crate owns:
//! - [`Executor`] (one per IP family and table): [`Executor::full_sync`] (cold start and the periodic
//!   drift-repair resync) and [`Executor::apply`] (one change), each returning a [`SyncReport`];
//! - the netlink socket, nfnetlink batches and the byte encoding of the model's set elements (which must
//!   match `proxy::shape`'s set definitions exactly);
//! - where the executor lives: the current network namespace or one given by path
//!   ([`Executor::new_in_netns`]), for the socket and for every `nft` it runs.
//!
//! It must not decide *what* the table holds (that is `proxy`'s job: this crate only performs a model or a
//! diff), must not touch any other table, must never delete its own table while it exists (only
//! [`Executor::delete_table`], on explicit request, does), and must not let one refused element stop the
//! others: a refused element is reported in [`SyncReport::failed`] and the rest is applied.
//!
//! # Why two channels
//! The `nft` CLI re-reads the whole ruleset on every call (0.36 s for a 5-line change at 10k Services on
//! this kernel) and parses text (a cold `nft -f` of 10k Services × 10 endpoints takes 4–6 s). What scales
//! is per-Service state, and in this rule shape that is only *elements* of a fixed set of sets and maps; so
//! elements go over netlink, encoded here, in batches of many elements per message. The structure (table,
//! set definitions, fixed chains, shared pick chains and their rules) is small and constant-size, and rule
//! expressions are the hard part of the nf_tables wire format, so it goes through `nft -f -`; it changes
//! only on a cold start, a resync, or when a new pick chain appears.
//!
//! # Atomicity
//! Every netlink write is one nfnetlink batch (BEGIN … END): the kernel applies all of it or none of it,
//! and packets see the old or the new state. A resync is one `nft -f` transaction that declares what is
//! missing and flushes and refills every chain of ours, then one batch that flushes each set and re-adds
//! all its elements: no moment where an existing Service has no element. When the kernel refuses a batch
//! it says which message failed and, with extended acks, which element; the executor drops that element,
//! splits messages it cannot attribute, and retries, so the good elements land and the bad are reported.

mod encode;
mod error;
mod netlink;

use std::collections::{BTreeSet, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use proxy::render;
use proxy::shape::{self, Element, SetName, Value};
use proxy::{Config, Diff, Family, Op, ProxyModel};
use tracing::{debug, info, warn};

pub use error::{Error, Result};

use netlink::{BatchResult, Message, Socket};

/// The table comment, as `proxy::render::ruleset` writes it.
const TABLE_COMMENT: &str = "svcplane: Services of this node (managed by svcplane agent)";

/// The interval sets of configuration that the executor fills over netlink (the other configuration sets,
/// `service-protocols` and the dynamic `affinity`, are written by `nft` or by packets).
const CIDR_SETS: [&str; 2] = ["cluster-cidrs", "service-cidrs"];

/// What happened to an element op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementOp {
    Add,
    Delete,
}

/// An element the kernel refused; everything else of the same sync was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedElement {
    pub op: ElementOp,
    pub element: Element,
    /// The value it was to be added with ([`Value::None`] for deletions).
    pub value: Value,
    /// The kernel's errno (positive).
    pub errno: i32,
    /// The errno's text and the kernel's extended-ack message, if any.
    pub error: String,
}

/// What one sync did and cost.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub elements_added: usize,
    pub elements_deleted: usize,
    /// Sets flushed and refilled (full sync).
    pub sets_flushed: usize,
    /// Chains created, refilled or deleted.
    pub chains_changed: usize,
    pub netlink_batches: usize,
    pub netlink_messages: usize,
    /// Bytes sent over netlink.
    pub bytes: usize,
    pub nft_runs: usize,
    /// Time spent in `nft -f` (part of `duration`).
    pub nft_duration: Duration,
    pub duration: Duration,
    /// A full sync whose structure `nft` refused (e.g. a set of an older, incompatible definition) was
    /// done by atomically replacing the table with `proxy::render::ruleset` text instead.
    pub replaced_table: bool,
    pub failed: Vec<FailedElement>,
}

/// Programs one nftables table (`ip svcplane` or `ip6 svcplane`) in one network namespace.
pub struct Executor {
    family: Family,
    table: String,
    socket: Socket,
    /// Where `nft` must run: the namespace the socket was opened in.
    netns: Option<PathBuf>,
    nft: PathBuf,
    /// DESTROYSETELEM (kernel 6.3+) deletes an element that is already gone without failing the batch; a
    /// delete of a missing element is what a diff does after drift, and must not be reported as a failure.
    destroy_supported: bool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("family", &self.family)
            .field("table", &self.table)
            .field("netns", &self.netns)
            .finish()
    }
}

/// One message of element operations (or a flush) in a batch being built.
enum Step {
    Flush {
        set: &'static str,
    },
    Elements {
        set: &'static str,
        kind: u16,
        flags: u16,
        items: Vec<usize>,
    },
}

/// One element op, already encoded (a cidr of an interval set is two netlink elements, one item).
struct Item {
    set: &'static str,
    delete: bool,
    /// Where its encoding sits in [`Items::bytes`].
    blob: std::ops::Range<u32>,
    origin: Origin,
}

impl Item {
    fn blob_len(&self) -> usize {
        (self.blob.end - self.blob.start) as usize
    }
}

/// The items of one sync and their encodings in one buffer: a cold sync at 10k Services has 130k of them,
/// and a buffer each would double the sync's transient memory.
#[derive(Default)]
struct Items {
    list: Vec<Item>,
    bytes: Vec<u8>,
}

impl Items {
    fn push(
        &mut self,
        set: &'static str,
        delete: bool,
        origin: Origin,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.bytes.len() as u32;
        encode(&mut self.bytes);
        let end = self.bytes.len() as u32;
        self.list.push(Item {
            set,
            delete,
            blob: start..end,
            origin,
        });
    }

    fn blob(&self, i: usize) -> &[u8] {
        let r = &self.list[i].blob;
        &self.bytes[r.start as usize..r.end as usize]
    }
}

impl std::ops::Deref for Items {
    type Target = [Item];
    fn deref(&self) -> &[Item] {
        &self.list
    }
}

enum Origin {
    Model(ElementOp, Element, Value),
    Config(IpNet),
}

#[derive(Default)]
struct BatchStats {
    batches: usize,
    messages: usize,
    bytes: usize,
    /// (item index, errno, text) of refused items.
    failed: Vec<(usize, i32, String)>,
}

impl Executor {
    /// An executor for `table` of `family` in the current network namespace.
    pub fn new(family: Family, table: impl Into<String>) -> Result<Executor> {
        Executor::with_socket(family, table.into(), Socket::open()?, None)
    }

    /// An executor for `table` of `family` in the network namespace at `path` (e.g. `/run/netns/NAME`):
    /// its socket is created there, and every `nft` it runs is entered into it (`nsenter --net=PATH`).
    pub fn new_in_netns(path: &Path, family: Family, table: impl Into<String>) -> Result<Executor> {
        let socket = Socket::open_in_netns(path)?;
        Executor::with_socket(family, table.into(), socket, Some(path.to_path_buf()))
    }

    fn with_socket(
        family: Family,
        table: String,
        socket: Socket,
        netns: Option<PathBuf>,
    ) -> Result<Executor> {
        let mut executor = Executor {
            family,
            table,
            socket,
            netns,
            nft: PathBuf::from("nft"),
            destroy_supported: true,
        };
        executor.destroy_supported = executor.probe_destroy()?;
        Ok(executor)
    }

    /// Uses another `nft` binary (default: `nft` from `PATH`).
    pub fn with_nft_binary(mut self, path: impl Into<PathBuf>) -> Executor {
        self.nft = path.into();
        self
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn nfproto(&self) -> u8 {
        match self.family {
            Family::V4 => netlink::NFPROTO_IPV4,
            Family::V6 => netlink::NFPROTO_IPV6,
        }
    }

    /// A kernel without DESTROYSETELEM refuses the message type itself (EINVAL); one with it looks the
    /// table up and does not find this one (ENOENT).
    fn probe_destroy(&mut self) -> Result<bool> {
        let mut body = Vec::new();
        netlink::put_str(
            &mut body,
            netlink::NFTA_SET_ELEM_LIST_TABLE,
            "svcplane-netfilter-probe",
        );
        netlink::put_str(&mut body, netlink::NFTA_SET_ELEM_LIST_SET, "probe");
        let result = self.socket.batch(&[Message {
            kind: netlink::NFT_MSG_DESTROYSETELEM,
            flags: 0,
            family: self.nfproto(),
            body,
        }])?;
        let supported = !result
            .errors
            .iter()
            .any(|e| e.errno == libc::EINVAL || e.errno == libc::EOPNOTSUPP);
        debug!(supported, "DESTROYSETELEM probe");
        Ok(supported)
    }

    fn check_config(&self, config: &Config) -> Result<()> {
        if config.family != self.family || config.table != self.table {
            return Err(Error::Mismatch(format!(
                "model is {} table {:?}, executor is {} table {:?}",
                config.family.nft(),
                config.table,
                self.family.nft(),
                self.table
            )));
        }
        Ok(())
    }

    /// Makes the kernel hold exactly the model's table: the cold start and the periodic resync that
    /// repairs drift (a flushed chain, a deleted rule, deleted or foreign elements) without a moment where
    /// existing Services stop working. The table is created if missing and never deleted.
    ///
    /// 1. one `nft -f` transaction declares the table, sets and chains (a no-op for those that exist),
    ///    flushes every chain of ours and adds its rules again;
    /// 2. one netlink batch flushes each set and re-adds all its elements;
    /// 3. chains of our table that the model no longer has (stale pick chains) are deleted, now that no
    ///    element jumps to them.
    pub fn full_sync(&mut self, model: &ProxyModel) -> Result<SyncReport> {
        let start = Instant::now();
        let config = model.config();
        self.check_config(config)?;
        let mut report = SyncReport::default();

        let structure = self.structure_text(model);
        let nft_start = Instant::now();
        let structured = self.run_nft(&structure);
        report.nft_runs += 1;
        if let Err(err) = structured {
            // The usual cause is an existing set whose definition differs (an older svcplane): `nft` cannot
            // change a set's type in place. Replacing the table is still one atomic transaction.
            warn!(table = %self.table, error = %err, "structure refused; replacing the table atomically");
            let text = render::ruleset(model, render::Mode::Replace);
            self.run_nft(&text)?;
            report.nft_runs += 1;
            report.nft_duration = nft_start.elapsed();
            report.replaced_table = true;
            report.elements_added = model.elements().len();
            report.chains_changed = shape::chains(self.family).len() + model.pick_chains().len();
            report.duration = start.elapsed();
            return Ok(report);
        }
        report.nft_duration = nft_start.elapsed();
        let pick_chains = model.pick_chains();
        report.chains_changed = shape::chains(self.family).len() + pick_chains.len();

        // Elements: flush and refill every set in one batch.
        let mut items = Items::default();
        let mut steps = Vec::new();
        for set in CIDR_SETS {
            let cidrs = match set {
                "cluster-cidrs" => &config.cluster_cidrs,
                _ => &config.service_cidrs,
            };
            let nets: Vec<IpNet> = cidrs
                .iter()
                .filter(|n| self.family.matches(&n.addr()))
                .map(|n| n.trunc())
                .collect();
            // `auto-merge` is nft's: the kernel's interval tree refuses overlapping ranges, so merge here.
            let first = items.len();
            for net in IpNet::aggregate(&nets) {
                items.push(set, false, Origin::Config(net), |b| {
                    encode::interval(b, &net)
                });
            }
            steps.push(Step::Flush { set });
            push_steps(&mut steps, &items, first..items.len());
        }
        let elements = model.elements_sorted();
        for set in SetName::ALL {
            steps.push(Step::Flush { set: set.name() });
            let first = items.len();
            for (element, value) in elements.iter().filter(|(e, _)| e.set == set) {
                let origin = Origin::Model(ElementOp::Add, **element, **value);
                items.push(set.name(), false, origin, |b| {
                    encode::element(b, element, Some(value))
                });
            }
            push_steps(&mut steps, &items, first..items.len());
        }
        report.sets_flushed = CIDR_SETS.len() + SetName::ALL.len();
        let stats = self.run_steps(steps, &items)?;
        self.account(&mut report, &stats, &items)?;

        // Stale chains: only now is nothing jumping to them.
        let mut wanted: HashSet<String> = shape::chains(self.family)
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        wanted.extend(pick_chains.iter().map(|c| c.name()));
        let stale: Vec<String> = self
            .list_chains()?
            .into_iter()
            .filter(|name| !wanted.contains(name))
            .collect();
        if !stale.is_empty() {
            report.chains_changed += self.delete_chains(&stale, &mut report)?;
        }
        report.duration = start.elapsed();
        info!(
            table = %self.table,
            family = %self.family,
            elements = report.elements_added,
            failed = report.failed.len(),
            messages = report.netlink_messages,
            bytes = report.bytes,
            nft_ms = report.nft_duration.as_secs_f64() * 1e3,
            ms = report.duration.as_secs_f64() * 1e3,
            "full sync"
        );
        Ok(report)
    }

    /// Applies one diff (`ProxyModel::take_diff`): new pick chains through `nft -f` (rare: a pick chain is
    /// shared by every frontend with the same endpoint count and policy), all element operations in one
    /// netlink batch, then chains no element jumps to any more are deleted over netlink. Elements the
    /// kernel refuses are reported in [`SyncReport::failed`]; the others are applied.
    pub fn apply(&mut self, config: &Config, diff: &Diff) -> Result<SyncReport> {
        let start = Instant::now();
        self.check_config(config)?;
        if diff.family != self.family {
            return Err(Error::Mismatch(format!(
                "diff of {} applied to a {} table",
                diff.family.nft(),
                self.family.nft()
            )));
        }
        let mut report = SyncReport::default();
        let added_chains: Vec<Op> = diff
            .ops
            .iter()
            .filter(|op| matches!(op, Op::AddChain(_)))
            .cloned()
            .collect();
        if !added_chains.is_empty() {
            // The elements of this diff jump to these chains: they must exist first. The model only names
            // chains; their rules are `proxy::render`'s, used as is.
            report.chains_changed += added_chains.len();
            let text = render::transaction(
                config,
                &Diff {
                    family: diff.family,
                    ops: added_chains,
                    frontends: Vec::new(),
                },
            );
            let nft_start = Instant::now();
            self.run_nft(&text)?;
            report.nft_runs += 1;
            report.nft_duration = nft_start.elapsed();
        }

        let mut items = Items::default();
        for op in &diff.ops {
            let (element, value, op) = match op {
                Op::DeleteElement(element) => (*element, Value::None, ElementOp::Delete),
                Op::AddElement(element, value) => (*element, *value, ElementOp::Add),
                Op::AddChain(_) | Op::DeleteChain(_) => continue,
            };
            let delete = op == ElementOp::Delete;
            let origin = Origin::Model(op, element, value);
            items.push(element.set.name(), delete, origin, |b| {
                encode::element(b, &element, (!delete).then_some(&value))
            });
        }
        if !items.is_empty() {
            // The diff lists deletions before additions (a changed value is a deletion then an addition),
            // and keeping that order in the batch is what makes the replacement valid.
            let mut steps = Vec::new();
            let mut run_start = 0;
            for i in 1..=items.len() {
                let boundary = i == items.len()
                    || items[i].set != items[run_start].set
                    || items[i].delete != items[run_start].delete;
                if boundary {
                    push_steps(&mut steps, &items, run_start..i);
                    run_start = i;
                }
            }
            let stats = self.run_steps(steps, &items)?;
            self.account(&mut report, &stats, &items)?;
        }

        let deleted: Vec<String> = diff
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::DeleteChain(chain) => Some(chain.name()),
                _ => None,
            })
            .collect();
        if !deleted.is_empty() {
            report.chains_changed += self.delete_chains(&deleted, &mut report)?;
        }
        report.duration = start.elapsed();
        debug!(
            table = %self.table,
            added = report.elements_added,
            deleted = report.elements_deleted,
            failed = report.failed.len(),
            us = report.duration.as_micros() as u64,
            "applied diff"
        );
        Ok(report)
    }

    /// Deletes our table (cleanup on shutdown or uninstall). Absent is fine.
    pub fn delete_table(&mut self) -> Result<()> {
        let mut body = Vec::new();
        netlink::put_str(&mut body, netlink::NFTA_TABLE_NAME, &self.table);
        let result = self.socket.batch(&[Message {
            kind: netlink::NFT_MSG_DELTABLE,
            flags: 0,
            family: self.nfproto(),
            body,
        }])?;
        match result.errors.first() {
            Some(e) if e.errno != libc::ENOENT => Err(Error::Kernel {
                what: format!("delete table {} {}", self.family.nft(), self.table),
                errno: e.errno,
                message: e.message.clone(),
            }),
            _ => batch_level(&result, "delete table"),
        }
    }

    /// The chains of our table, as the kernel has them.
    pub fn list_chains(&mut self) -> Result<Vec<String>> {
        let mut body = Vec::new();
        netlink::put_str(&mut body, netlink::NFTA_CHAIN_TABLE, &self.table);
        let replies = match self
            .socket
            .dump(netlink::NFT_MSG_GETCHAIN, self.nfproto(), &body)
        {
            Ok(replies) => replies,
            Err(Error::Kernel { errno, .. }) if errno == libc::ENOENT => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut names = BTreeSet::new();
        for reply in replies {
            let mut table = None;
            let mut name = None;
            for (kind, value) in netlink::attrs(&reply) {
                match kind {
                    netlink::NFTA_CHAIN_TABLE => table = Some(netlink::attr_str(value)),
                    netlink::NFTA_CHAIN_NAME => name = Some(netlink::attr_str(value)),
                    _ => {}
                }
            }
            // Older kernels ignore the table filter of a chain dump: check it here.
            if let (Some(table), Some(name)) = (table, name) {
                if table == self.table {
                    names.insert(name);
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Deletes chains (and their rules) over netlink, one message each; a chain still referenced (EBUSY) or
    /// already gone is left and logged: a stray unreferenced chain costs nothing and the next resync
    /// retries. Returns how many were deleted.
    fn delete_chains(&mut self, names: &[String], report: &mut SyncReport) -> Result<usize> {
        let mut pending: Vec<&String> = names.iter().collect();
        for _ in 0..3 {
            let messages: Vec<Message> = pending
                .iter()
                .map(|name| {
                    let mut body = Vec::new();
                    netlink::put_str(&mut body, netlink::NFTA_CHAIN_TABLE, &self.table);
                    netlink::put_str(&mut body, netlink::NFTA_CHAIN_NAME, name);
                    Message {
                        kind: netlink::NFT_MSG_DELCHAIN,
                        flags: 0,
                        family: self.nfproto(),
                        body,
                    }
                })
                .collect();
            let result = self.socket.batch(&messages)?;
            report.netlink_batches += 1;
            report.netlink_messages += messages.len();
            report.bytes += result.bytes;
            if result.ok() {
                return Ok(pending.len());
            }
            batch_level(&result, "delete chains")?;
            let refused: HashSet<usize> = result.errors.iter().map(|e| e.index).collect();
            for e in &result.errors {
                if let Some(name) = pending.get(e.index) {
                    warn!(chain = %name, errno = e.errno, "could not delete chain; left for the next resync");
                }
            }
            pending = pending
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !refused.contains(i))
                .map(|(_, n)| n)
                .collect();
            if pending.is_empty() {
                return Ok(0);
            }
        }
        Ok(0)
    }

    /// Sends the steps as one batch; when the kernel refuses it, removes the refused elements (located by
    /// the extended ack's offset, or by splitting a message into one element each when the kernel did not
    /// point at one) and sends the rest again, until a batch commits.
    fn run_steps(&mut self, mut steps: Vec<Step>, items: &Items) -> Result<BatchStats> {
        let mut stats = BatchStats::default();
        let delete_kind = if self.destroy_supported {
            netlink::NFT_MSG_DESTROYSETELEM
        } else {
            netlink::NFT_MSG_DELSETELEM
        };
        for step in steps.iter_mut() {
            if let Step::Elements { kind, .. } = step {
                if *kind == netlink::NFT_MSG_DELSETELEM {
                    *kind = delete_kind;
                }
            }
        }
        // Each round removes an element or splits a message, so this ends; the bound is a safety net.
        let max_rounds = items.len() * 2 + 8;
        for _ in 0..max_rounds {
            steps.retain(|s| !matches!(s, Step::Elements { items, .. } if items.is_empty()));
            if steps.is_empty() {
                return Ok(stats);
            }
            let mut offsets: Vec<Vec<(usize, usize)>> = Vec::with_capacity(steps.len());
            let messages: Vec<Message> = steps
                .iter()
                .map(|step| {
                    let (message, item_offsets) = self.message(step, items);
                    offsets.push(item_offsets);
                    message
                })
                .collect();
            let result = self.socket.batch(&messages)?;
            stats.batches += 1;
            stats.messages += messages.len();
            stats.bytes += result.bytes;
            if result.ok() {
                return Ok(stats);
            }
            if result.errors.is_empty() {
                batch_level(&result, "element batch")?;
            }
            let mut splits: Vec<(usize, Vec<usize>)> = Vec::new();
            for error in &result.errors {
                let Some(step) = steps.get_mut(error.index) else {
                    continue;
                };
                let text = error_text(error.errno, error.message.as_deref());
                match step {
                    Step::Flush { set } => {
                        return Err(Error::Kernel {
                            what: format!("flush of set {set}"),
                            errno: error.errno,
                            message: error.message.clone(),
                        })
                    }
                    Step::Elements {
                        items: step_items, ..
                    } => {
                        let located = error.body_offset.and_then(|off| {
                            offsets[error.index]
                                .iter()
                                .position(|(start, end)| (*start..*end).contains(&off))
                        });
                        match located {
                            Some(pos) => {
                                let item = step_items.remove(pos);
                                stats.failed.push((item, error.errno, text));
                            }
                            None if step_items.len() == 1 => {
                                stats.failed.push((step_items[0], error.errno, text));
                                step_items.clear();
                            }
                            None => splits.push((error.index, std::mem::take(step_items))),
                        }
                    }
                }
            }
            // Split unattributed messages into one element each, in place, keeping the batch order.
            for (index, split) in splits.into_iter().rev() {
                let Some(Step::Elements {
                    set, kind, flags, ..
                }) = steps.get(index)
                else {
                    continue;
                };
                let (set, kind, flags) = (*set, *kind, *flags);
                let singles: Vec<Step> = split
                    .into_iter()
                    .map(|item| Step::Elements {
                        set,
                        kind,
                        flags,
                        items: vec![item],
                    })
                    .collect();
                steps.splice(index..index + 1, singles);
            }
        }
        Err(Error::Protocol(
            "element batch did not converge after removing refused elements".into(),
        ))
    }

    /// Builds a step's message; for element steps also where each item's attributes sit in the body.
    fn message(&self, step: &Step, items: &Items) -> (Message, Vec<(usize, usize)>) {
        let mut body = Vec::new();
        netlink::put_str(&mut body, netlink::NFTA_SET_ELEM_LIST_TABLE, &self.table);
        let mut offsets = Vec::new();
        let (kind, flags) = match step {
            Step::Flush { set } => {
                // DELSETELEM without elements flushes the set.
                netlink::put_str(&mut body, netlink::NFTA_SET_ELEM_LIST_SET, set);
                (netlink::NFT_MSG_DELSETELEM, 0)
            }
            Step::Elements {
                set,
                kind,
                flags,
                items: step_items,
            } => {
                netlink::put_str(&mut body, netlink::NFTA_SET_ELEM_LIST_SET, set);
                let nest = netlink::begin_nested(&mut body, netlink::NFTA_SET_ELEM_LIST_ELEMENTS);
                for &i in step_items {
                    let start = body.len();
                    body.extend_from_slice(items.blob(i));
                    offsets.push((start, body.len()));
                }
                netlink::end_nested(&mut body, nest);
                (*kind, *flags)
            }
        };
        (
            Message {
                kind,
                flags,
                family: self.nfproto(),
                body,
            },
            offsets,
        )
    }

    fn account(&self, report: &mut SyncReport, stats: &BatchStats, items: &[Item]) -> Result<()> {
        report.netlink_batches += stats.batches;
        report.netlink_messages += stats.messages;
        report.bytes += stats.bytes;
        let mut refused = vec![false; items.len()];
        for (index, errno, text) in &stats.failed {
            let Some(item) = items.get(*index) else {
                continue;
            };
            refused[*index] = true;
            match &item.origin {
                Origin::Model(op, element, value) => {
                    warn!(set = %item.set, element = %shape::element_text(element, value), errno, error = %text, "kernel refused element");
                    report.failed.push(FailedElement {
                        op: *op,
                        element: *element,
                        value: *value,
                        errno: *errno,
                        error: text.clone(),
                    });
                }
                // A configuration range is not one Service's: failing it fails the sync.
                Origin::Config(net) => {
                    return Err(Error::Kernel {
                        what: format!("{net} in set {}", item.set),
                        errno: *errno,
                        message: Some(text.clone()),
                    })
                }
            }
        }
        for (item, refused) in items.iter().zip(refused) {
            if refused {
                continue;
            }
            match (&item.origin, item.delete) {
                (Origin::Model(..), true) => report.elements_deleted += 1,
                (Origin::Model(..), false) => report.elements_added += 1,
                (Origin::Config(_), _) => {}
            }
        }
        Ok(())
    }

    /// The structure in `nft` syntax: declarations that create what is missing and leave what exists (no
    /// `delete table`: the table and its elements stay while we refill the chains), then a flush and the
    /// rules of every chain, all one transaction.
    fn structure_text(&self, model: &ProxyModel) -> String {
        use std::fmt::Write as _;
        let family = self.family;
        let (fam, table) = (family.nft(), self.table.as_str());
        let mut out = String::new();
        let _ = writeln!(out, "table {fam} {table} {{");
        let _ = writeln!(out, "\tcomment \"{TABLE_COMMENT}\"");
        for (name, definition) in shape::config_sets(family) {
            let _ = writeln!(out, "\tset {name} {{ {definition}; }}");
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
        let fixed = shape::chains(family);
        for chain in &fixed {
            let _ = writeln!(
                out,
                "\tchain {} {{ {} }}",
                chain.name,
                chain.hook.unwrap_or("")
            );
        }
        let picks = model.pick_chains();
        for chain in &picks {
            let _ = writeln!(out, "\tchain {} {{ }}", chain.name());
        }
        let _ = writeln!(out, "}}");
        let mut fill = |name: &str, rules: &[String]| {
            let _ = writeln!(out, "flush chain {fam} {table} {name}");
            for rule in rules {
                let _ = writeln!(out, "add rule {fam} {table} {name} {rule}");
            }
        };
        for chain in &fixed {
            fill(chain.name, &chain.rules);
        }
        for chain in &picks {
            fill(&chain.name(), &chain.rules(family));
        }
        out
    }

    /// Runs `nft -f -` with `script`, in our network namespace.
    fn run_nft(&self, script: &str) -> Result<()> {
        let mut command = match &self.netns {
            Some(path) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", path.display()))
                    .arg("--")
                    .arg(&self.nft);
                c
            }
            None => Command::new(&self.nft),
        };
        command
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(Error::NftSpawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(Error::NftSpawn)?;
        }
        let output = child.wait_with_output().map_err(Error::NftSpawn)?;
        if !output.status.success() {
            return Err(Error::Nft {
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(())
    }
}

/// Splits a run of items of one set and op into messages whose elements fit one nested attribute.
fn push_steps(steps: &mut Vec<Step>, items: &[Item], range: std::ops::Range<usize>) {
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0;
    for i in range {
        let item = &items[i];
        if !current.is_empty() && size + item.blob_len() > netlink::MAX_NESTED_PAYLOAD {
            steps.push(element_step(item, std::mem::take(&mut current)));
            size = 0;
        }
        size += item.blob_len();
        current.push(i);
    }
    if let Some(&first) = current.first() {
        steps.push(element_step(&items[first], current));
    }
}

fn element_step(item: &Item, indices: Vec<usize>) -> Step {
    let (kind, flags) = if item.delete {
        (netlink::NFT_MSG_DELSETELEM, 0)
    } else {
        // Without NLM_F_EXCL an element that exists with the same value is not an error.
        (netlink::NFT_MSG_NEWSETELEM, netlink::NLM_F_CREATE)
    };
    Step::Elements {
        set: item.set,
        kind,
        flags,
        items: indices,
    }
}

fn batch_level(result: &BatchResult, what: &str) -> Result<()> {
    match &result.batch_error {
        Some((errno, message)) => Err(Error::Kernel {
            what: what.to_string(),
            errno: *errno,
            message: message.clone(),
        }),
        None => Ok(()),
    }
}

fn error_text(errno: i32, message: Option<&str>) -> String {
    let base = std::io::Error::from_raw_os_error(errno).to_string();
    match message {
        Some(m) if !m.is_empty() => format!("{base}: {m}"),
        _ => base,
    }
}
