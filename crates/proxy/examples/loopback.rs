//! Prints a ruleset whose endpoints are all one local address, for trying the rule shape with real packets
//! inside a network namespace of your own (`ip netns add …; ip netns exec … nft -f -`): `web` 10.96.0.10:80
//! spreads over ADDR:8081-8083, `sticky` 10.96.0.11:80 does the same with ClientIP affinity, `empty`
//! 10.96.0.12:80 has no endpoints. `cargo run -p proxy --example loopback -- ADDR`.

use proxy::render::{ruleset, Mode};
use proxy::{Config, Family, ProxyModel};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).ok_or("usage: loopback ADDR")?;
    let mut config = Config::new(Family::V4, "node-1");
    config.service_cidrs = vec!["10.96.0.0/16".parse()?];
    let mut model = ProxyModel::new(config);
    for (name, ip, affinity) in [
        ("web", "10.96.0.10", false),
        ("sticky", "10.96.0.11", true),
        ("empty", "10.96.0.12", false),
    ] {
        let mut spec =
            json!({"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80}]});
        if affinity {
            spec["sessionAffinity"] = json!("ClientIP");
        }
        model.upsert_service(&serde_json::from_value(
            json!({"metadata": {"namespace": "default", "name": name}, "spec": spec}),
        )?)?;
        if name == "empty" {
            continue;
        }
        // One slice per port: an EndpointSlice has one port number for all its endpoints.
        for port in [8081, 8082, 8083] {
            model.upsert_endpoint_slice(&serde_json::from_value(json!({
                "metadata": {"namespace": "default", "name": format!("{name}-{port}"),
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [addr.clone()], "nodeName": "node-2"}],
                "ports": [{"name": "http", "port": port, "protocol": "TCP"}]
            }))?);
        }
    }
    print!("{}", ruleset(&model, Mode::Replace));
    Ok(())
}
