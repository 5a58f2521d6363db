//! The executor against the real kernel, each test inside a network namespace of its own (root needed, as
//! in CI). The reference for "what the kernel should hold" is the model's `nft -f` text
//! (`proxy::render::ruleset`) loaded by `nft` into a second namespace: both tables, listed by `nft`, must
//! be the same, so our netlink encoding round-trips through nft's own decoding.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use common::*;
use netfilter::{ElementOp, Executor};
use proxy::render::{ruleset, Mode};
use proxy::shape::{
    element_text, Element, Group, Key, Masquerade, PickChain, SetName, Target, Value, Verdict,
};
use proxy::{Config, Diff, Family, Frontend, Op, Protocol, ProxyModel};

const TABLE: &str = "svcplane";

/// Loads the model's text into a fresh namespace with nft: what the kernel should hold.
fn reference(model: &ProxyModel) -> Listing {
    let ns = Netns::new();
    ns.nft_script(&ruleset(model, Mode::Replace));
    ns.table(model.family())
}

fn assert_same(got: &Listing, want: &Listing) {
    if got != want {
        let mut msg = String::new();
        for (header, lines) in &want.blocks {
            match got.blocks.get(header) {
                None => msg.push_str(&format!("missing block {header}\n")),
                Some(l) if l != lines => msg.push_str(&format!(
                    "block {header}:\n  want {lines:?}\n  got  {l:?}\n"
                )),
                _ => {}
            }
        }
        for header in got.blocks.keys() {
            if !want.blocks.contains_key(header) {
                msg.push_str(&format!("extra block {header}\n"));
            }
        }
        panic!("kernel tables differ:\n{msg}");
    }
}

fn executor(ns: &Netns, family: Family) -> Executor {
    Executor::new_in_netns(&ns.path, family, TABLE).expect("executor")
}

fn cold_sync_matches_text(family: Family) {
    let model = rich_model(family);
    let ns = Netns::new();
    let mut exec = executor(&ns, family);
    let report = exec.full_sync(&model).expect("full sync");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.elements_added, model.elements().len());
    let got = ns.table(family);
    assert_same(&got, &reference(&model));
    // And directly against the model's element text, set by set.
    let mut filled = Vec::new();
    for set in SetName::ALL {
        let mut want: Vec<String> = model
            .elements()
            .iter()
            .filter(|(e, _)| e.set == set)
            .map(|(e, v)| element_text(e, v))
            .collect();
        want.sort();
        if !want.is_empty() {
            filled.push(set.name());
        }
        assert_eq!(got.elements(set.name()), want, "set {}", set.name());
    }
    // The model exercises the interesting encodings: ranges, slots and endpoints, verdicts.
    for name in [
        "firewall-allow",
        "no-endpoint-services",
        "external-local-local",
        "hairpin",
    ] {
        assert!(filled.contains(&name), "the test model should fill {name}");
    }
    assert!(filled.iter().any(|n| n.starts_with("cluster-endpoints")));
    assert!(filled.iter().any(|n| n.starts_with("local-endpoints")));
}

#[test]
fn cold_sync_ipv4_matches_the_rendered_text() {
    cold_sync_matches_text(Family::V4);
}

#[test]
fn cold_sync_ipv6_matches_the_rendered_text() {
    cold_sync_matches_text(Family::V6);
}

#[test]
fn second_full_sync_is_idempotent() {
    let model = rich_model(Family::V4);
    let ns = Netns::new();
    let mut exec = executor(&ns, Family::V4);
    exec.full_sync(&model).expect("first");
    let before = ns.table(Family::V4);
    let report = exec.full_sync(&model).expect("second");
    assert!(report.failed.is_empty());
    assert!(!report.replaced_table);
    assert_same(&ns.table(Family::V4), &before);
}

#[test]
fn apply_diffs_add_and_delete_services_and_endpoints() {
    let family = Family::V4;
    let mut model = rich_model(family);
    let config = model.config().clone();
    let ns = Netns::new();
    let mut exec = executor(&ns, family);
    exec.full_sync(&model).expect("full sync");
    model.mark_synced();

    let mut step = |model: &mut ProxyModel, what: &str| {
        let diff = model.take_diff();
        assert!(!diff.ops.is_empty(), "{what}: empty diff");
        let report = exec.apply(&config, &diff).expect(what);
        assert!(report.failed.is_empty(), "{what}: {:?}", report.failed);
        assert_same(&ns.table(family), &reference(model));
        report
    };

    // A new Service with 7 endpoints: a pick chain no one had (cluster-7), created by nft.
    model
        .upsert_service(&cluster_ip("new", "10.96.1.1"))
        .expect("service");
    let eps = (0..7)
        .map(|i| ready(&format!("10.244.9.{}", i + 1), "node-2"))
        .collect();
    model.upsert_endpoint_slice(&http_slice("new", "new-1", 8080, eps));
    let report = step(&mut model, "add a service");
    assert_eq!(report.chains_changed, 1);
    assert!(ns
        .table(family)
        .chain("cluster-7-masq-offcluster")
        .is_some());

    // One more endpoint for web-1 (2 → 3): a slot and the verdict replaced.
    model.upsert_endpoint_slice(&http_slice(
        "web-1",
        "web-1-1",
        8080,
        vec![
            ready("10.244.0.11", NODE),
            ready("10.244.0.12", "node-2"),
            ready("10.244.0.99", "node-3"),
        ],
    ));
    let report = step(&mut model, "add an endpoint");
    assert!(report.elements_added >= 2 && report.elements_deleted >= 1);

    // Remove an endpoint of web-2 (3 → 2): the last slot moves into its place.
    model.upsert_endpoint_slice(&http_slice(
        "web-2",
        "web-2-1",
        8080,
        vec![ready("10.244.0.21", NODE), ready("10.244.0.23", "node-2")],
    ));
    step(&mut model, "remove an endpoint");

    // Delete the 7-endpoint Service: its chain goes too.
    model.delete_service("default", "new");
    let report = step(&mut model, "delete a service");
    assert_eq!(report.chains_changed, 1);
    assert!(ns
        .table(family)
        .chain("cluster-7-masq-offcluster")
        .is_none());

    // Delete a Service with a source-range firewall (interval elements are deleted by their range).
    model.delete_service("default", "lb");
    step(&mut model, "delete the load balancer");
}

fn rule_handle(ns: &Netns, chain: &str, needle: &str) -> String {
    let listing = ns.nft(&["-a", "list", "chain", "ip", TABLE, chain]);
    listing
        .lines()
        .find(|l| l.contains(needle) && l.contains("# handle"))
        .and_then(|l| l.rsplit("# handle ").next())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| panic!("no rule {needle:?} in {listing}"))
}

#[test]
fn full_sync_repairs_drift() {
    let family = Family::V4;
    let model = rich_model(family);
    let ns = Netns::new();
    let mut exec = executor(&ns, family);
    exec.full_sync(&model).expect("full sync");
    let want = reference(&model);
    assert_same(&ns.table(family), &want);

    // Someone flushes a chain, deletes a rule, deletes elements, adds a foreign element, a foreign rule
    // and a chain of their own, and empties a configuration set.
    let handle = rule_handle(&ns, "nat-output", "jump services");
    let endpoint = model
        .elements()
        .into_iter()
        .find(|(e, _)| e.set.name().starts_with("cluster-endpoints"))
        .expect("an endpoint element");
    let verdict = model
        .elements()
        .into_iter()
        .find(|(e, _)| e.set == SetName::ServiceIps)
        .expect("a service-ips element");
    let key = |(e, _): &(Element, Value)| element_text(e, &Value::None);
    ns.nft_script(&format!(
        "flush chain ip {TABLE} services\n\
         delete rule ip {TABLE} nat-output handle {handle}\n\
         delete element ip {TABLE} {} {{ {} }}\n\
         delete element ip {TABLE} service-ips {{ {} }}\n\
         add element ip {TABLE} cluster-ips {{ 10.96.200.200 }}\n\
         add rule ip {TABLE} filter-input tcp dport 22 drop\n\
         add chain ip {TABLE} intruder\n\
         flush set ip {TABLE} service-cidrs\n",
        endpoint.0.set.name(),
        key(&endpoint),
        key(&verdict),
    ));
    let drifted = ns.table(family);
    assert_ne!(drifted, want);
    assert!(drifted.chain("services").is_some_and(|c| c.is_empty()));

    let report = exec.full_sync(&model).expect("resync");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(!report.replaced_table);
    assert_same(&ns.table(family), &want);
}

#[test]
fn full_sync_replaces_an_incompatible_table() {
    let family = Family::V4;
    let model = rich_model(family);
    let ns = Netns::new();
    // An older table whose service-ips has another type: nft cannot redefine it in place.
    ns.nft_script(&format!(
        "table ip {TABLE} {{\n map service-ips {{ type ipv4_addr : verdict; }}\n}}\n"
    ));
    let mut exec = executor(&ns, family);
    let report = exec.full_sync(&model).expect("full sync");
    assert!(report.replaced_table);
    assert_same(&ns.table(family), &reference(&model));
    // From then on the normal path works.
    let report = exec.full_sync(&model).expect("resync");
    assert!(!report.replaced_table);
}

fn frontend(ip: &str, port: u16) -> Frontend {
    Frontend {
        ip: ip.parse().expect("ip"),
        protocol: Protocol::Tcp,
        port,
    }
}

#[test]
fn refused_elements_are_reported_and_the_rest_applied() {
    let family = Family::V4;
    let model = rich_model(family);
    let config = model.config().clone();
    let ns = Netns::new();
    let mut exec = executor(&ns, family);
    exec.full_sync(&model).expect("full sync");

    let missing_chain = PickChain {
        group: Group::Cluster,
        endpoints: 42,
        masquerade: Masquerade::No,
        affinity: None,
    };
    // Many elements (several netlink messages) with three bad ones among them: a jump to a chain that does
    // not exist, an IPv6 address in an IPv4 set, and a source range of the wrong family.
    let mut ops = Vec::new();
    for i in 0..3000u32 {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 96, 100, 0)) + i);
        ops.push(Op::AddElement(
            Element {
                set: SetName::ClusterIps,
                key: Key::Addr(ip.into()),
            },
            Value::None,
        ));
        if i == 1500 {
            ops.push(Op::AddElement(
                Element {
                    set: SetName::ClusterIps,
                    key: Key::Addr("fd00::1".parse().expect("ip")),
                },
                Value::None,
            ));
        }
    }
    ops.push(Op::AddElement(
        Element {
            set: SetName::ServiceIps,
            key: Key::Frontend(frontend("10.96.50.1", 80)),
        },
        Value::Verdict(Verdict::Goto(Target::Pick(missing_chain))),
    ));
    ops.push(Op::AddElement(
        Element {
            set: SetName::ServiceIps,
            key: Key::Frontend(frontend("10.96.50.2", 80)),
        },
        Value::Verdict(Verdict::Goto(Target::Reject)),
    ));
    ops.push(Op::AddElement(
        Element {
            set: SetName::FirewallAllow,
            key: Key::Source(
                frontend("10.96.50.3", 80),
                "2001:db8::/32".parse().expect("net"),
            ),
        },
        Value::None,
    ));
    // Deleting what is not there is not a failure (the kernel already agrees).
    ops.push(Op::DeleteElement(Element {
        set: SetName::ClusterIps,
        key: Key::Addr("10.96.250.250".parse().expect("ip")),
    }));
    let diff = Diff {
        family,
        ops,
        frontends: Vec::new(),
    };
    let report = exec.apply(&config, &diff).expect("apply");
    let mut failed: Vec<String> = report
        .failed
        .iter()
        .map(|f| {
            assert_eq!(f.op, ElementOp::Add);
            format!(
                "{} {}",
                f.element.set.name(),
                element_text(&f.element, &f.value)
            )
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            "cluster-ips fd00::1".to_string(),
            "firewall-allow 10.96.50.3 . tcp . 80 . 2001:db8::/32".to_string(),
            "service-ips 10.96.50.1 . tcp . 80 : goto cluster-42".to_string(),
        ]
    );
    assert!(report.failed.iter().all(|f| !f.error.is_empty()));
    // The kernel's extended ack points at each refused element, so one retry suffices (no splitting of
    // the 1000-element messages into single elements).
    assert_eq!(report.netlink_batches, 2, "{report:?}");
    assert_eq!(report.elements_added, 3001);
    let listing = ns.table(family);
    let ips = listing.elements("cluster-ips");
    assert!(ips.contains(&"10.96.100.0".to_string()));
    assert!(ips.contains(&"10.96.111.183".to_string()));
    assert!(listing
        .elements("service-ips")
        .contains(&"10.96.50.2 . tcp . 80 : goto reject-chain".to_string()));
}

#[test]
fn delete_table_removes_only_our_table() {
    let ns = Netns::new();
    ns.nft_script("table ip other {\n chain c {\n }\n}\n");
    let mut exec = executor(&ns, Family::V4);
    exec.full_sync(&rich_model(Family::V4)).expect("sync");
    exec.delete_table().expect("delete");
    exec.delete_table().expect("absent is fine");
    let all = ns.nft(&["list", "tables"]);
    assert!(all.contains("table ip other"), "{all}");
    assert!(!all.contains("svcplane"), "{all}");
}

#[test]
fn mismatched_model_is_refused() {
    let ns = Netns::new();
    let mut exec = executor(&ns, Family::V6);
    assert!(exec.full_sync(&rich_model(Family::V4)).is_err());
    let config = Config::new(Family::V6, NODE);
    let diff = Diff {
        family: Family::V4,
        ops: Vec::new(),
        frontends: Vec::new(),
    };
    assert!(exec.apply(&config, &diff).is_err());
}

/// Runs `f` on a thread inside the namespace (sockets it creates stay there).
fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(path).expect("netns");
    std::thread::spawn(move || {
        // SAFETY: setns on a descriptor we own; affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

/// Connects to `to` and returns the port of the listener that answered (it echoes its own port).
fn connect(to: SocketAddr) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = [0u8; 2];
    stream.read_exact(&mut buf)?;
    Ok(u16::from_be_bytes(buf))
}

#[test]
fn packets_reach_the_endpoint_through_the_cluster_ip() {
    packets_through_cluster_ip(Family::V4);
}

#[test]
fn ipv6_packets_reach_the_endpoint_through_the_cluster_ip() {
    packets_through_cluster_ip(Family::V6);
}

fn packets_through_cluster_ip(family: Family) {
    let v6 = family == Family::V6;
    let (node_ip, range, vip, empty_vip) = if v6 {
        (
            "fd00::1",
            "fd00:10:96::/112",
            "fd00:10:96::10",
            "fd00:10:96::12",
        )
    } else {
        ("10.0.0.1", "10.96.0.0/16", "10.96.0.10", "10.96.0.12")
    };
    let ns = Netns::new();
    // A node address of the namespace, and a route for the Service range (a ClusterIP is never on an
    // interface; locally generated packets only need a route to leave by before the output hook DNATs).
    // Both on lo: nothing else exists in the namespace, and nothing leaves it.
    let address = format!("{node_ip}/{}", if v6 { 128 } else { 32 });
    let mut add = vec!["addr", "add", address.as_str(), "dev", "lo"];
    if v6 {
        // No duplicate address detection: the address is usable at once.
        add.push("nodad");
    }
    ns.ip(&add);
    ns.ip(&["route", "add", range, "dev", "lo"]);

    let mut config = Config::new(family, NODE);
    config.service_cidrs = vec![range.parse().expect("cidr")];
    let mut model = ProxyModel::new(config.clone());
    model
        .upsert_service(&cluster_ip("web", vip))
        .expect("service");
    model.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        8081,
        vec![ready(node_ip, "node-2")],
    ));
    model
        .upsert_service(&cluster_ip("empty", empty_vip))
        .expect("service");
    let mut exec = executor(&ns, family);
    let report = exec.full_sync(&model).expect("sync");
    assert!(report.failed.is_empty());
    model.mark_synced();

    // Listeners on 8081 and 8082 answer with their own port number.
    let ip: std::net::IpAddr = node_ip.parse().expect("ip");
    let listeners = in_netns(&ns.path, move || {
        [8081u16, 8082].map(|port| TcpListener::bind((ip, port)).expect("bind"))
    });
    let mut threads = Vec::new();
    for listener in listeners {
        threads.push(std::thread::spawn(move || {
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(&port.to_be_bytes());
            }
        }));
    }
    let vip = SocketAddr::new(vip.parse().expect("ip"), 80);
    let answered = in_netns(&ns.path, move || connect(vip));
    assert_eq!(answered.expect("connect through the ClusterIP"), 8081);

    // A Service without endpoints does not connect (the shape rejects it; from a local socket on this
    // kernel the ICMP error does not come back as ECONNREFUSED, so only the failure is checked).
    let empty = SocketAddr::new(empty_vip.parse().expect("ip"), 80);
    let refused = in_netns(&ns.path, move || connect(empty));
    assert!(refused.is_err(), "a Service without endpoints answered");

    // Move the endpoint to 8082 with an incremental apply: new connections follow.
    model.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        8082,
        vec![ready(node_ip, "node-2")],
    ));
    let diff = model.take_diff();
    let report = exec.apply(&config, &diff).expect("apply");
    assert!(report.failed.is_empty());
    let answered = in_netns(&ns.path, move || connect(vip));
    assert_eq!(answered.expect("connect after the change"), 8082);
    for t in threads {
        t.join().expect("listener");
    }
}
