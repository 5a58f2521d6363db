//! Each default kube-apiserver v1.33 applies to a new or updated Service.

mod common;

use api::default_service;
use api::service::set_defaults_service;
use common::{defaulted, dual, parse, stored, svc_json, v4, v6};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

#[test]
fn cluster_ip_service_defaults() {
    let svc = defaulted(
        svc_json(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
        &v4(),
    );
    let v = serde_json::to_value(&svc).unwrap();
    assert_eq!(v["spec"]["type"], "ClusterIP");
    assert_eq!(v["spec"]["sessionAffinity"], "None");
    assert_eq!(v["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(v["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(v["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(v["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(v["spec"]["ipFamilies"], json!(["IPv4"]));
    assert!(v["spec"].get("externalTrafficPolicy").is_none());
    assert!(v["spec"].get("allocateLoadBalancerNodePorts").is_none());
    assert!(
        v["spec"].get("clusterIP").is_none(),
        "allocation is the API server's job"
    );
    assert_eq!(v["status"], json!({"loadBalancer": {}}));
}

#[test]
fn target_port_defaults_only_when_unset() {
    let svc = defaulted(
        svc_json(json!({"ports": [
            {"name": "a", "port": 80, "targetPort": 0},
            {"name": "b", "port": 81, "targetPort": ""},
            {"name": "c", "port": 82, "targetPort": "http"},
            {"name": "d", "port": 83, "targetPort": 8083, "protocol": "UDP"}]})),
        &v4(),
    );
    let ports = svc.spec.unwrap().ports.unwrap();
    assert_eq!(ports[0].target_port, Some(IntOrString::Int(80)));
    assert_eq!(ports[1].target_port, Some(IntOrString::Int(81)));
    assert_eq!(
        ports[2].target_port,
        Some(IntOrString::String("http".into()))
    );
    assert_eq!(ports[3].target_port, Some(IntOrString::Int(8083)));
    assert_eq!(ports[3].protocol.as_deref(), Some("UDP"));
}

#[test]
fn node_port_and_load_balancer_defaults() {
    let np = defaulted(
        svc_json(json!({"type": "NodePort", "ports": [{"port": 80}]})),
        &v4(),
    );
    let spec = np.spec.unwrap();
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.allocate_load_balancer_node_ports, None);

    let lb = defaulted(
        svc_json(json!({"type": "LoadBalancer", "ports": [{"port": 80}]})),
        &v4(),
    );
    let spec = lb.spec.unwrap();
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));

    let lb_local = defaulted(
        svc_json(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                        "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
        ),
        &v4(),
    );
    let spec = lb_local.spec.unwrap();
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
    assert_eq!(spec.allocate_load_balancer_node_ports, Some(false));
}

#[test]
fn external_ips_make_cluster_ip_externally_accessible() {
    let svc = defaulted(
        svc_json(json!({"externalIPs": ["192.0.2.10"], "ports": [{"port": 80}]})),
        &v4(),
    );
    assert_eq!(
        svc.spec.unwrap().external_traffic_policy.as_deref(),
        Some("Cluster")
    );
}

#[test]
fn client_ip_affinity_gets_three_hour_timeout() {
    let svc = defaulted(
        svc_json(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]})),
        &v4(),
    );
    let cfg = svc.spec.unwrap().session_affinity_config.unwrap();
    assert_eq!(cfg.client_ip.unwrap().timeout_seconds, Some(10800));

    let none = defaulted(
        svc_json(
            json!({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}},
                        "ports": [{"port": 80}]}),
        ),
        &v4(),
    );
    assert_eq!(none.spec.unwrap().session_affinity_config, None);
}

#[test]
fn cluster_ips_follow_cluster_ip() {
    let svc = defaulted(
        svc_json(json!({"clusterIP": "10.0.0.10", "ports": [{"port": 80}]})),
        &v4(),
    );
    let spec = svc.spec.unwrap();
    assert_eq!(spec.cluster_ips, Some(vec!["10.0.0.10".to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
}

#[test]
fn ip_families_follow_cluster_config() {
    let on_v6 = defaulted(svc_json(json!({"ports": [{"port": 80}]})), &v6());
    assert_eq!(
        on_v6.spec.unwrap().ip_families,
        Some(vec!["IPv6".to_string()])
    );

    let prefer = defaulted(
        svc_json(json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]})),
        &dual(),
    );
    assert_eq!(
        prefer.spec.unwrap().ip_families,
        Some(vec!["IPv4".to_string(), "IPv6".to_string()])
    );

    let prefer_single = defaulted(
        svc_json(json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]})),
        &v4(),
    );
    assert_eq!(
        prefer_single.spec.unwrap().ip_families,
        Some(vec!["IPv4".to_string()])
    );

    // The family of a requested secondary-family IP wins over the primary.
    let v6_ip = defaulted(
        svc_json(json!({"clusterIP": "fd00::10", "ports": [{"port": 80}]})),
        &dual(),
    );
    let spec = v6_ip.spec.unwrap();
    assert_eq!(spec.ip_families, Some(vec!["IPv6".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
}

#[test]
fn headless_defaults() {
    let selectorless = defaulted(svc_json(json!({"clusterIP": "None"})), &v4());
    let spec = selectorless.spec.unwrap();
    assert_eq!(spec.cluster_ips, Some(vec!["None".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
    assert_eq!(
        spec.ip_families,
        Some(vec!["IPv4".to_string(), "IPv6".to_string()])
    );

    let with_selector = defaulted(
        svc_json(json!({"clusterIP": "None", "selector": {"app": "db"}})),
        &v4(),
    );
    let spec = with_selector.spec.unwrap();
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
}

#[test]
fn external_name_gets_no_cluster_fields() {
    let svc = defaulted(
        svc_json(json!({"type": "ExternalName", "externalName": "db.example.com"})),
        &v4(),
    );
    let spec = svc.spec.unwrap();
    assert_eq!(spec.internal_traffic_policy, None);
    assert_eq!(spec.ip_family_policy, None);
    assert_eq!(spec.ip_families, None);
    assert_eq!(spec.cluster_ips, None);
}

#[test]
fn create_resets_status() {
    let mut manifest = svc_json(json!({"ports": [{"port": 80}]}));
    manifest["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
    let svc = defaulted(manifest, &v4());
    assert_eq!(
        serde_json::to_value(&svc.status).unwrap(),
        json!({"loadBalancer": {}})
    );
}

#[test]
fn load_balancer_ingress_gets_vip_mode() {
    let mut svc = parse(
        json!({"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]}}}),
    );
    set_defaults_service(&mut svc);
    let ingress = svc.status.unwrap().load_balancer.unwrap().ingress.unwrap();
    assert_eq!(ingress[0].ip_mode.as_deref(), Some("VIP"));
    assert_eq!(ingress[1].ip_mode, None);
}

#[test]
fn update_keeps_allocated_values_the_client_omitted() {
    let lb = json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                    "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]});
    let mut old = stored(svc_json(lb.clone()), &v4(), &["10.0.0.10"], &[30080, 30443]);
    old.spec.as_mut().unwrap().health_check_node_port = Some(31000);
    old.status = Some(
        serde_json::from_value(
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]}}),
        )
        .unwrap(),
    );

    let mut new = parse(svc_json(lb));
    new.metadata.resource_version = Some("1".into());
    default_service(&mut new, Some(&old), &v4());
    let spec = new.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.0.0.10"));
    assert_eq!(spec.cluster_ips, Some(vec!["10.0.0.10".to_string()]));
    let node_ports: Vec<_> = spec.ports.iter().flatten().map(|p| p.node_port).collect();
    assert_eq!(node_ports, vec![Some(30080), Some(30443)]);
    assert_eq!(spec.health_check_node_port, Some(31000));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(new.status, old.status, "status is carried over on update");
}

#[test]
fn update_to_external_name_clears_ip_fields() {
    let old = stored(
        svc_json(json!({"ports": [{"port": 80}]})),
        &v4(),
        &["10.0.0.10"],
        &[],
    );
    let mut new = old.clone();
    let spec = new.spec.as_mut().unwrap();
    spec.type_ = Some("ExternalName".into());
    spec.external_name = Some("db.example.com".into());
    default_service(&mut new, Some(&old), &v4());
    let spec = new.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip, None);
    assert_eq!(spec.cluster_ips, None);
    assert_eq!(spec.ip_families, None);
    assert_eq!(spec.ip_family_policy, None);
    assert!(api::validate_service_update(&new, &old, &v4()).is_empty());
}

#[test]
fn update_from_load_balancer_to_cluster_ip_clears_lb_fields() {
    let lb = json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/lb", "ports": [{"port": 80}]});
    let mut old = stored(svc_json(lb), &v4(), &["10.0.0.10"], &[30080]);
    old.status = Some(
        serde_json::from_value(
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]}}),
        )
        .unwrap(),
    );
    let mut new = old.clone();
    new.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    default_service(&mut new, Some(&old), &v4());
    let spec = new.spec.as_ref().unwrap();
    assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, None);
    assert_eq!(spec.allocate_load_balancer_node_ports, None);
    assert_eq!(spec.load_balancer_class, None);
    assert_eq!(spec.external_traffic_policy, None);
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.0.0.10"));
    assert_eq!(
        serde_json::to_value(&new.status).unwrap(),
        json!({"loadBalancer": {}})
    );
    assert!(api::validate_service_update(&new, &old, &v4()).is_empty());
}

#[test]
fn update_with_single_stack_drops_secondary() {
    let ds = json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]});
    let old = stored(svc_json(ds), &dual(), &["10.0.0.10", "fd00::10"], &[]);
    let mut new = old.clone();
    new.spec.as_mut().unwrap().ip_family_policy = Some("SingleStack".into());
    default_service(&mut new, Some(&old), &dual());
    let spec = new.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ips, Some(vec!["10.0.0.10".to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert!(api::validate_service_update(&new, &old, &dual()).is_empty());
}

#[test]
fn default_on_read_fills_legacy_objects() {
    let mut legacy = parse(
        json!({"metadata": {"name": "old"}, "spec": {"type": "ClusterIP", "clusterIP": "fd00::10"}}),
    );
    api::service::default_on_read(&mut legacy, &dual());
    let spec = legacy.spec.unwrap();
    assert_eq!(spec.cluster_ips, Some(vec!["fd00::10".to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv6".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));

    let mut ext = parse(json!({"metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "a.example", "internalTrafficPolicy": "Cluster"}}));
    api::service::default_on_read(&mut ext, &v4());
    assert_eq!(ext.spec.unwrap().internal_traffic_policy, None);
}
