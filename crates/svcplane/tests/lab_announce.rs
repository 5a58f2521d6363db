//! End-to-end tests of LoadBalancer announcement in the lab: the IPAM controller gives a Service an address
//! on the node LAN, one node's agent answers ARP/NDP for it, and the outside client's own kernel resolves
//! and reaches it with no route; when that agent stops or dies, another node takes the address over and
//! tells the client with gratuitous ARP. Root only (CI runs as root); each test builds its own lab.

mod lablib;

use std::time::{Duration, Instant};

use lablib::{eventually, Lab};

impl Lab {
    /// The nodes whose agent says it announces `ip` now.
    fn announcers(&self, ip: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| {
                self.agent_state(n)["announcing"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == ip))
            })
            .cloned()
            .collect()
    }

    fn mac(&self, node: &str) -> String {
        self.out(node, &["cat", "/sys/class/net/eth0/address"])
    }

    /// The MAC the client's kernel has for `ip` (any state but FAILED/INCOMPLETE).
    fn client_neighbour(&self, ip: &str) -> Option<String> {
        let line = self.out("client", &["ip", "neigh", "show", "to", ip, "dev", "eth0"]);
        let mut words = line.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(String::from)
    }

    /// One fresh connection from the client; the answering pod's name, or "" on failure.
    fn client_get(&self, url: &str) -> String {
        self.out("client", &["curl", "-s", "-g", "--max-time", "1", url])
    }

    /// The LoadBalancer addresses in a Service's status (waits for them).
    fn ingress(&self, svc: &str, count: usize) -> Vec<String> {
        let mut ips = Vec::new();
        eventually(&format!("{svc} gets {count} ingress addresses"), || {
            ips = self
                .kubectl(&[
                    "get",
                    "svc",
                    svc,
                    "-o",
                    "jsonpath={.status.loadBalancer.ingress[*].ip}",
                ])
                .split_whitespace()
                .map(String::from)
                .collect();
            ips.len() == count
        });
        ips
    }
}

/// Polls until `f` holds, failing after `limit`; returns how long it took.
fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for one announcer of `ip` among the running agents and returns it.
fn sole_announcer(lab: &Lab, ip: &str) -> String {
    let mut who = Vec::new();
    eventually(&format!("exactly one node announces {ip}"), || {
        who = lab.announcers(ip);
        who.len() == 1
    });
    who.remove(0)
}

const PODS: [&str; 3] = ["pod-1-a", "pod-2-a", "pod-3-a"];

#[test]
fn lab_lb_address_is_announced_and_fails_over() {
    let Some(mut lab) = Lab::up(3, 1, "") else {
        return;
    };
    lab.apply("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n");
    let ip = lab.ingress("web", 1).remove(0);
    assert!(
        ip.starts_with("192.168.50.2"),
        "not from the lab pool: {ip}"
    );
    let url = format!("http://{ip}/hostname");
    let first = sole_announcer(&lab, &ip);

    // The client's kernel resolves the address on the LAN (no route) and reaches the pods.
    eventually(&format!("the client reaches {url}"), || {
        PODS.contains(&lab.client_get(&url).as_str())
    });
    assert_eq!(
        lab.client_neighbour(&ip),
        Some(lab.mac(&first)),
        "the client's neighbour entry is not the announcer's MAC"
    );
    let metrics = lab.out(
        &first,
        &[
            "curl",
            "-s",
            "--max-time",
            "2",
            "http://127.0.0.1:10249/metrics",
        ],
    );
    assert!(
        metrics.contains(&format!("svcplane_announce_announcing{{ip=\"{ip}\"}} 1")),
        "{metrics}"
    );
    assert!(!metrics.contains("svcplane_announce_gratuitous_sent_total 0"));

    // A graceful stop: the agent deletes its lease, another node takes over and sends gratuitous ARP.
    let out = lab.svcplane_lab(&["stop-agent".into(), first.clone()]);
    assert!(out.status.success(), "{out:?}");
    lab.nodes.retain(|n| n != &first);
    let started = Instant::now();
    let mut second = String::new();
    let elected = within(Duration::from_secs(5), "another node announces", || {
        let who = lab.announcers(&ip);
        if who.len() == 1 {
            second = who[0].clone();
        }
        who.len() == 1
    });
    let second_mac = lab.mac(&second);
    within(
        Duration::from_secs(5),
        "the client's neighbour entry moves",
        || lab.client_neighbour(&ip).as_ref() == Some(&second_mac),
    );
    let moved = started.elapsed();
    assert!(PODS.contains(&lab.client_get(&url).as_str()));
    eprintln!("graceful stop of {first}: {second} elected after {elected:?}, client neighbour moved after {moved:?}");

    // A crash: no lease release, the others drop the node when its lease (3 s) runs out.
    let out = lab.svcplane_lab(&["stop-agent".into(), second.clone(), "--kill".into()]);
    assert!(out.status.success(), "{out:?}");
    lab.nodes.retain(|n| n != &second);
    let started = Instant::now();
    let third = lab.nodes[0].clone();
    let third_mac = lab.mac(&third);
    let elected = within(Duration::from_secs(8), "the last node announces", || {
        lab.announcers(&ip) == vec![third.clone()]
    });
    within(
        Duration::from_secs(8),
        "the client's neighbour entry moves again",
        || lab.client_neighbour(&ip).as_ref() == Some(&third_mac),
    );
    let moved = started.elapsed();
    // A fresh connection through the new announcer.
    within(
        Duration::from_secs(3),
        "a fresh connection succeeds",
        || PODS.contains(&lab.client_get(&url).as_str()),
    );
    eprintln!("kill -9 of {second}: {third} elected after {elected:?}, client neighbour moved after {moved:?}");
}

#[test]
fn lab_lb_local_policy_announces_from_endpoint_nodes_over_arp_and_ndp() {
    let Some(lab) = Lab::up(2, 1, "") else { return };
    let svc = |node: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: local}}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n  selector: {{svcplane.io/lab-node: {node}}}\n  ports: [{{name: http, port: 80, targetPort: http}}]\n"
        )
    };
    lab.apply(&svc("node-2"));
    let ips = lab.ingress("local", 2);
    let v4 = ips.iter().find(|i| !i.contains(':')).expect("IPv4").clone();
    let v6 = ips.iter().find(|i| i.contains(':')).expect("IPv6").clone();
    for ip in [&v4, &v6] {
        eventually(&format!("only node-2 announces {ip}"), || {
            lab.announcers(ip) == vec!["node-2".to_string()]
        });
    }
    // ARP and NDP from the client's kernel; the client's address is kept (eTP Local).
    eventually("the client reaches the IPv4 address", || {
        lab.client_get(&format!("http://{v4}/clientip"))
            .starts_with("192.168.50.100:")
    });
    eventually("the client reaches the IPv6 address", || {
        lab.client_get(&format!("http://[{v6}]/hostname")) == "pod-2-a"
    });
    let mac2 = lab.mac("node-2");
    assert_eq!(lab.client_neighbour(&v4), Some(mac2.clone()));
    assert_eq!(lab.client_neighbour(&v6), Some(mac2));

    // The endpoints move to node-1: so does the announcement, and the client follows (gratuitous ARP and
    // unsolicited neighbour advertisement).
    lab.apply(&svc("node-1"));
    let mac1 = lab.mac("node-1");
    for ip in [&v4, &v6] {
        within(Duration::from_secs(10), "node-1 takes over", || {
            lab.announcers(ip) == vec!["node-1".to_string()]
        });
        within(Duration::from_secs(5), "the client follows", || {
            lab.client_neighbour(ip).as_ref() == Some(&mac1)
        });
    }
    eventually("node-1's pod answers on IPv4 and IPv6", || {
        lab.client_get(&format!("http://{v4}/hostname")) == "pod-1-a"
            && lab.client_get(&format!("http://[{v6}]/hostname")) == "pod-1-a"
    });
}
