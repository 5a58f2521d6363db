//! Writes rulesets for scale measurements: `cargo run --release -p proxy --example scale -- SERVICES
//! ENDPOINTS DIR [AFFINITY_SECONDS]` writes `DIR/full.nft` (cold start with SERVICES ClusterIP Services of
//! ENDPOINTS endpoints each), `DIR/add-service.nft` (the transaction adding one more Service) and
//! `DIR/add-endpoint.nft` (one more endpoint for an existing Service), and prints how long the model took.
//! Load them only in a network namespace of your own or with `nft -c` (check mode).

use std::net::Ipv4Addr;
use std::time::Instant;

use proxy::render::{ruleset, transaction, Mode};
use proxy::{Config, Family, ProxyModel};
use serde_json::json;

fn service(i: u32, affinity: Option<u32>) -> k8s_openapi::api::core::v1::Service {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i + 1).to_string();
    let mut spec = json!({"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                          "ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
    if let Some(t) = affinity {
        spec["sessionAffinity"] = json!("ClientIP");
        spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": t}});
    }
    serde_json::from_value(
        json!({"metadata": {"namespace": "scale", "name": format!("svc-{i}")}, "spec": spec}),
    )
    .expect("valid Service")
}

fn slice(i: u32, endpoints: u32) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<_> = (0..endpoints)
        .map(|e| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i * 64 + e);
            json!({"addresses": [ip.to_string()], "nodeName": format!("node-{}", e % 50), "conditions": {"ready": true}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "scale", "name": format!("svc-{i}-1"), "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .expect("valid EndpointSlice")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: scale SERVICES ENDPOINTS DIR [AFFINITY_SECONDS]".into());
    }
    let services: u32 = args[1].parse()?;
    let endpoints: u32 = args[2].parse()?;
    let dir = std::path::PathBuf::from(&args[3]);
    let affinity: Option<u32> = args.get(4).map(|a| a.parse()).transpose()?;
    std::fs::create_dir_all(&dir)?;

    let mut config = Config::new(Family::V4, "node-0");
    config.cluster_cidrs = vec!["10.128.0.0/9".parse()?];
    config.service_cidrs = vec!["10.96.0.0/12".parse()?];
    let mut model = ProxyModel::new(config.clone());

    let objects: Vec<_> = (0..services)
        .map(|i| (service(i, affinity), slice(i, endpoints)))
        .collect();
    let start = Instant::now();
    for (service, slice) in &objects {
        model.upsert_service(service)?;
        model.upsert_endpoint_slice(slice);
    }
    let built = start.elapsed();
    let start = Instant::now();
    let full = ruleset(&model, Mode::Replace);
    model.mark_synced();
    let rendered = start.elapsed();
    std::fs::write(dir.join("full.nft"), &full)?;

    let start = Instant::now();
    model.upsert_service(&service(services, affinity))?;
    model.upsert_endpoint_slice(&slice(services, endpoints));
    let diff = model.take_diff();
    let add_service = start.elapsed();
    std::fs::write(dir.join("add-service.nft"), transaction(&config, &diff))?;

    let start = Instant::now();
    model.upsert_endpoint_slice(&slice(0, endpoints + 1));
    let diff2 = model.take_diff();
    let add_endpoint = start.elapsed();
    std::fs::write(dir.join("add-endpoint.nft"), transaction(&config, &diff2))?;

    let stats = model.stats();
    println!(
        "services={services} endpoints={endpoints} elements={} chains={} full.nft={} bytes, {} lines",
        stats.elements,
        stats.chains,
        full.len(),
        full.lines().count()
    );
    println!("model build {built:?}, render {rendered:?}");
    println!(
        "add one service: {} ops in {add_service:?}; add one endpoint: {} ops in {add_endpoint:?}",
        diff.ops.len(),
        diff2.ops.len()
    );
    Ok(())
}
