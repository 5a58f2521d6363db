//! `LoadBalancerIPPool` (`svcplane.io/v1alpha1`, cluster-scoped): the address pools the LoadBalancer IPAM
//! controller hands out from. The API server serves the kind natively — typed round trip, defaulting,
//! validation with field paths, status subresource, OpenAPI schema — exactly as kube-apiserver would
//! serve it from the CustomResourceDefinition in `deploy/crds/`, whose schema a test keeps equal to
//! [`openapi_v3_schema`] plus CEL rules that make kube-apiserver refuse what [`validate_spec`] refuses.
//!
//! Usage is reported in status per family: `status.ipv4 = {total, used}` (and `ipv6`). `total` counts
//! the assignable addresses and saturates at 2^63-1 for larger IPv6 pools.

use std::net::IpAddr;

use api::field::FieldError;
use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const GROUP: &str = "svcplane.io";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "LoadBalancerIPPool";

/// The stored and served shape; unknown fields are dropped by the round trip (and refused under strict
/// field validation), as for every other kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIPPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PoolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PoolStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<FamilyUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<FamilyUsage>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FamilyUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
}

/// One entry of `spec.cidrs`, parsed: inclusive first and last address of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub first: IpAddr,
    pub last: IpAddr,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Parses `a.b.c.d/n`, `x::/n` (canonical: no host bits) or `first-last` (one family, first <= last).
/// The message is the detail of an Invalid field error.
pub fn parse_block(s: &str) -> Result<Block, String> {
    const FORMS: &str = "must be a CIDR (e.g. 192.0.2.0/24 or 2001:db8::/120) or an address range (e.g. 192.0.2.10-192.0.2.20)";
    if let Some((a, b)) = s.split_once('-') {
        let (Ok(first), Ok(last)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) else {
            return Err(FORMS.into());
        };
        if first.is_ipv4() != last.is_ipv4() {
            return Err("both ends of a range must be of the same IP family".into());
        }
        if to_u128(first) > to_u128(last) {
            return Err("the first address of a range may not be after its last".into());
        }
        return Ok(Block { first, last });
    }
    let net: IpNet = s.parse().map_err(|_| FORMS.to_string())?;
    if net.trunc() != net {
        return Err(format!("must be in canonical form (\"{}\")", net.trunc()));
    }
    Ok(Block {
        first: net.network(),
        last: net.broadcast(),
    })
}

fn selector_errors(sel: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = &sel.match_labels {
        errs.extend(api::meta::validate_labels(
            labels,
            &format!("{path}.matchLabels"),
        ));
    }
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        for msg in api::format::is_qualified_name(&e.key) {
            errs.push(FieldError::invalid(format!("{p}.key"), e.key.as_str(), msg));
        }
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                format!("{p}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                format!("{p}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::not_supported(
                format!("{p}.operator"),
                other,
                &["DoesNotExist", "Exists", "In", "NotIn"],
            )),
        }
        for (j, v) in values.iter().enumerate() {
            for msg in api::format::is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    format!("{p}.values[{j}]"),
                    v.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

/// Validation of the spec (create and update alike: every field may change; the controller moves
/// Services whose address left the pool).
pub fn validate_spec(pool: &LoadBalancerIPPool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(spec) = &pool.spec else {
        return vec![FieldError::required("spec", "")];
    };
    let cidrs = spec.cidrs.as_deref().unwrap_or_default();
    if cidrs.is_empty() {
        errs.push(FieldError::required(
            "spec.cidrs",
            "at least one CIDR or address range is required",
        ));
    }
    let mut parsed: Vec<(usize, Block)> = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        let path = format!("spec.cidrs[{i}]");
        let block = match parse_block(c) {
            Ok(b) => b,
            Err(msg) => {
                errs.push(FieldError::invalid(path, c.as_str(), msg));
                continue;
            }
        };
        // Addresses no LoadBalancer may carry: the same rule as Service externalIPs.
        let mut special = api::ip::validate_non_special_ip(&block.first.to_string(), &path);
        if special.is_empty() {
            special = api::ip::validate_non_special_ip(&block.last.to_string(), &path);
        }
        for mut e in special {
            e.bad_value = Some(json!(c));
            errs.push(e);
        }
        if let Some((j, _)) = parsed.iter().find(|(_, o)| {
            o.first.is_ipv4() == block.first.is_ipv4()
                && to_u128(o.first) <= to_u128(block.last)
                && to_u128(block.first) <= to_u128(o.last)
        }) {
            errs.push(FieldError::invalid(
                path,
                c.as_str(),
                format!("overlaps spec.cidrs[{j}] ({})", cidrs[*j]),
            ));
            continue;
        }
        parsed.push((i, block));
    }
    if let Some(s) = &spec.service_selector {
        errs.extend(selector_errors(s, "spec.serviceSelector"));
    }
    if let Some(s) = &spec.namespace_selector {
        errs.extend(selector_errors(s, "spec.namespaceSelector"));
    }
    errs
}

pub fn validate_status(pool: &LoadBalancerIPPool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(st) = &pool.status else {
        return errs;
    };
    for (fam, usage) in [("ipv4", &st.ipv4), ("ipv6", &st.ipv6)] {
        let Some(u) = usage else { continue };
        for (field, v) in [("total", u.total), ("used", u.used)] {
            if let Some(n) = v.filter(|n| *n < 0) {
                errs.push(FieldError::invalid(
                    format!("status.{fam}.{field}"),
                    n,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    errs
}

/// Defaults of a pool write: `autoAssign: true`, `priority: 0` (the CRD's schema defaults).
pub fn default_pool(pool: &mut LoadBalancerIPPool) {
    if let Some(spec) = pool.spec.as_mut() {
        spec.auto_assign.get_or_insert(true);
        spec.priority.get_or_insert(0);
    }
}

fn label_selector_schema(what: &str) -> Value {
    json!({
        "description": what,
        "type": "object",
        "properties": {
            "matchExpressions": {
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "type": "array",
                "items": {
                    "description": "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.",
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"description": "key is the label key that the selector applies to.", "type": "string"},
                        "operator": {"description": "operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist.", "type": "string"},
                        "values": {
                            "description": "values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty.",
                            "type": "array",
                            "items": {"type": "string"},
                            "x-kubernetes-list-type": "atomic",
                        },
                    },
                },
                "x-kubernetes-list-type": "atomic",
            },
            "matchLabels": {
                "description": "matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent to an element of matchExpressions, whose key field is \"key\", the operator is \"In\", and the values array contains only \"value\". The requirements are ANDed.",
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
        },
        "x-kubernetes-map-type": "atomic",
    })
}

fn usage_schema(family: &str) -> Value {
    json!({
        "description": format!("Addresses of the {family} family in this pool."),
        "type": "object",
        "properties": {
            "total": {"description": "Assignable addresses (saturates at 2^63-1).", "type": "integer", "format": "int64", "minimum": 0},
            "used": {"description": "Addresses assigned to Services.", "type": "integer", "format": "int64", "minimum": 0},
        },
    })
}

/// The kind's `openAPIV3Schema`, without the `apiVersion`/`kind`/`metadata` properties that
/// kube-apiserver adds to every custom resource (the CRD in `deploy/crds/` spells those out, and a
/// test checks the rest is equal).
pub fn openapi_v3_schema() -> Value {
    json!({
        "description": "LoadBalancerIPPool is a pool of addresses that svcplane's LoadBalancer IPAM controller assigns to Services of type LoadBalancer (loadBalancerClass unset or svcplane.io/lb).",
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "description": "The addresses of the pool and which Services may get them.",
                "type": "object",
                "required": ["cidrs"],
                "properties": {
                    "cidrs": {
                        "description": "IPv4 and IPv6 blocks of the pool: CIDRs (\"192.0.2.0/24\", \"2001:db8::/120\"; the first and last address of a CIDR of more than two addresses are not assigned) or inclusive ranges (\"192.0.2.10-192.0.2.20\", every address assigned). Entries may not overlap.",
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "atomic",
                    },
                    "autoAssign": {
                        "description": "Whether Services that ask for no pool get addresses from this one. A pool with autoAssign false serves only Services that name it (annotation svcplane.io/ip-pool) or request one of its addresses. Defaults to true.",
                        "type": "boolean",
                        "default": true,
                    },
                    "priority": {
                        "description": "Order in which pools are tried: higher first, then by name. Defaults to 0.",
                        "type": "integer",
                        "format": "int32",
                        "default": 0,
                    },
                    "serviceSelector": label_selector_schema("Services (by their labels) that may get addresses from this pool; unset selects every Service."),
                    "namespaceSelector": label_selector_schema("Namespaces (by their labels) whose Services may get addresses from this pool; unset selects every namespace."),
                },
            },
            "status": {
                "description": "Usage of the pool, kept by the LoadBalancer IPAM controller.",
                "type": "object",
                "properties": {
                    "ipv4": usage_schema("IPv4"),
                    "ipv6": usage_schema("IPv6"),
                },
            },
        },
    })
}

/// `additionalPrinterColumns` of the CRD: (name, type, jsonPath, priority). The API server prints the
/// same columns natively (the `printers` crate); a test keeps the two equal.
pub const PRINTER_COLUMNS: &[(&str, &str, &str, i32)] = &[
    ("CIDRs", "string", ".spec.cidrs", 0),
    ("Auto Assign", "boolean", ".spec.autoAssign", 0),
    ("Priority", "integer", ".spec.priority", 0),
    ("IPv4 Used", "integer", ".status.ipv4.used", 0),
    ("IPv4 Total", "integer", ".status.ipv4.total", 1),
    ("IPv6 Used", "integer", ".status.ipv6.used", 0),
    ("IPv6 Total", "integer", ".status.ipv6.total", 1),
    ("Age", "date", ".metadata.creationTimestamp", 0),
];

/// Most entries in `spec.cidrs` on a real cluster: kube-apiserver refuses a CRD whose CEL rules could
/// cost more than its budget, and the overlap rule compares every pair of entries.
pub const CRD_MAX_CIDRS: usize = 50;

/// CEL (`x-kubernetes-validations`) for `spec.cidrs`, so that kube-apiserver refuses what
/// [`validate_spec`] refuses (checked against a real kube-apiserver by `deploy/check-reference.sh`):
/// malformed entries, CIDRs with host bits, ranges across families or (IPv4) backwards, unspecified,
/// loopback and link-local addresses (a CIDR's first address, a range's ends), repeated and overlapping
/// entries (IPv6 ranges are compared with CIDRs only; CEL cannot order IPv6 addresses). What slips through
/// is left out by the controller, with the reason in its log.
fn crd_cidr_validations(schema: &mut Value) {
    fn ends(v: &str) -> (String, String) {
        (
            format!("{v}.split('-')[0].trim()"),
            format!("{v}.split('-')[1].trim()"),
        )
    }
    fn is_range(v: &str) -> String {
        let (a, b) = ends(v);
        format!("({v}.split('-').size() == 2 && isIP({a}) && isIP({b}))")
    }
    fn is_v4_range(v: &str) -> String {
        let (a, b) = ends(v);
        format!(
            "({} && ip({a}).family() == 4 && ip({b}).family() == 4)",
            is_range(v)
        )
    }
    /// An IPv4 address (in a string expression) as an int.
    fn v4(e: &str) -> String {
        [16777216, 65536, 256, 1]
            .iter()
            .enumerate()
            .map(|(i, m)| format!("int({e}.split('.')[{i}]) * {m}"))
            .collect::<Vec<_>>()
            .join(" + ")
    }
    let (a, b) = ends("self");
    let range = is_range("self");
    let item_rules = json!([
        {
            "rule": format!("isCIDR(self) || {range}"),
            "message": "must be a CIDR (e.g. 192.0.2.0/24 or 2001:db8::/120) or an address range (e.g. 192.0.2.10-192.0.2.20)",
        },
        {
            "rule": "!isCIDR(self) || cidr(self) == cidr(self).masked()",
            "message": "must be in canonical form (no bits set after the prefix length)",
        },
        {
            "rule": format!("!{range} || ip({a}).family() == ip({b}).family()"),
            "message": "both ends of a range must be of the same IP family",
        },
        {
            "rule": format!("!{} || {} <= {}", is_v4_range("self"), v4(&a), v4(&b)),
            "message": "the first address of a range may not be after its last",
        },
        {
            "rule": format!(
                "[isCIDR(self) ? cidr(self).ip() : {range} ? ip({a}) : ip('192.0.2.1'), \
                 {range} ? ip({b}) : ip('192.0.2.1')].all(a, !a.isUnspecified() && !a.isLoopback() \
                 && !a.isLinkLocalUnicast() && !a.isLinkLocalMulticast())"
            ),
            "message": "may not include unspecified, loopback, link-local or link-local multicast addresses",
        },
    ]);
    let ((xa, xb), (ya, yb)) = (ends("x"), ends("y"));
    let cidr_cidr = "(!cidr(x).containsCIDR(cidr(y)) && !cidr(y).containsCIDR(cidr(x)))";
    let cidr_range = format!(
        "(!{} || (!cidr(x).containsIP({ya}) && !cidr(x).containsIP({yb})))",
        is_range("y")
    );
    let range_range = format!(
        "(!{} || !{} || {} < {} || {} < {})",
        is_v4_range("x"),
        is_v4_range("y"),
        v4(&xb),
        v4(&ya),
        v4(&yb),
        v4(&xa)
    );
    let list_rules = json!([
        {"rule": "self.all(x, self.exists_one(y, y == x))", "message": "entries may not repeat"},
        {
            "rule": format!(
                "self.all(x, self.all(y, y == x || (isCIDR(x) ? (isCIDR(y) ? {cidr_cidr} : {cidr_range}) : {range_range})))"
            ),
            "message": "entries may not overlap",
        },
    ]);
    let spec = &mut schema["properties"]["spec"]["properties"];
    let cidrs = &mut spec["cidrs"];
    cidrs["maxItems"] = json!(CRD_MAX_CIDRS);
    cidrs["x-kubernetes-validations"] = list_rules;
    // The longest entry: two full IPv6 addresses around " - ".
    cidrs["items"]["maxLength"] = json!(90);
    cidrs["items"]["x-kubernetes-validations"] = item_rules;
    for sel in ["serviceSelector", "namespaceSelector"] {
        spec[sel]["properties"]["matchExpressions"]["items"]["properties"]["operator"]["enum"] =
            json!(["In", "NotIn", "Exists", "DoesNotExist"]);
    }
}

/// The CustomResourceDefinition that serves this kind on a real cluster (`deploy/crds/`): the served
/// schema plus the CEL rules of [`crd_cidr_validations`].
pub fn crd() -> Value {
    let mut schema = openapi_v3_schema();
    crd_cidr_validations(&mut schema);
    let top = json!({
        "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"},
        "kind": {"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"},
        "metadata": {"type": "object"},
    });
    if let (Some(props), Some(top)) = (
        schema.get_mut("properties").and_then(Value::as_object_mut),
        top.as_object(),
    ) {
        for (k, v) in top {
            props.insert(k.clone(), v.clone());
        }
    }
    let columns: Vec<Value> = PRINTER_COLUMNS
        .iter()
        .map(|(name, ty, path, priority)| {
            let mut c = json!({"name": name, "type": ty, "jsonPath": path});
            if *priority != 0 {
                c["priority"] = json!(priority);
            }
            c
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("loadbalancerippools.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": "loadbalancerippools",
                "singular": "loadbalancerippool",
                "shortNames": ["lbippool"],
            },
            "scope": "Cluster",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `deploy/crds/` holds what [`crd`] builds; `SVCPLANE_WRITE_CRDS=1 cargo test -p apiserver` rewrites it.
    #[test]
    fn deployed_crd_matches_the_served_kind() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/crds/loadbalancerippools.svcplane.io.yaml");
        let want = crd();
        if std::env::var_os("SVCPLANE_WRITE_CRDS").is_some() {
            let text = format!(
                "# Generated from crates/apiserver/src/pools.rs (SVCPLANE_WRITE_CRDS=1 cargo test -p apiserver).\n{}",
                serde_yaml::to_string(&want).unwrap()
            );
            std::fs::write(&path, text).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let got: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(got, want, "{} is out of date", path.display());
        // The native Table has the CRD's columns.
        let native: Vec<(String, String, i64)> =
            printers::column_definitions("loadbalancerippools")
                .iter()
                .skip(1)
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["type"].as_str().unwrap().to_string(),
                        c["priority"].as_i64().unwrap(),
                    )
                })
                .collect();
        let declared: Vec<(String, String, i64)> = PRINTER_COLUMNS
            .iter()
            .map(|(n, t, _, p)| {
                // The native Age column is a string cell (a computed age), a CRD's a date.
                let t = if *n == "Age" { "string" } else { t };
                (n.to_string(), t.to_string(), i64::from(*p))
            })
            .collect();
        assert_eq!(native, declared);
    }

    fn pool(spec: Value) -> LoadBalancerIPPool {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn fields(spec: Value) -> Vec<String> {
        validate_spec(&pool(spec))
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn blocks_parse_cidrs_and_ranges() {
        let b = parse_block("192.0.2.0/30").unwrap();
        assert_eq!(
            (b.first.to_string(), b.last.to_string()),
            ("192.0.2.0".into(), "192.0.2.3".into())
        );
        let r = parse_block("192.0.2.10-192.0.2.12").unwrap();
        assert_eq!(r.last.to_string(), "192.0.2.12");
        assert!(parse_block("2001:db8::/120").is_ok());
        assert!(parse_block("192.0.2.1/24")
            .unwrap_err()
            .contains("canonical"));
        assert!(parse_block("192.0.2.9-192.0.2.1").is_err());
        assert!(parse_block("192.0.2.1-2001:db8::1").is_err());
        assert!(parse_block("192.0.2.1").is_err());
        assert!(parse_block("nonsense").is_err());
    }

    #[test]
    fn valid_pool_has_no_errors() {
        assert!(fields(json!({"cidrs": ["192.0.2.0/24", "2001:db8::/120"],
            "serviceSelector": {"matchLabels": {"tier": "web"}},
            "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}}))
        .is_empty());
    }

    #[test]
    fn invalid_pools_name_their_fields() {
        assert_eq!(
            fields(json!({})),
            ["spec.cidrs: Required value: at least one CIDR or address range is required"]
        );
        let e = fields(json!({"cidrs": ["10.0.0.0/8", "300.1.1.1/32"]}));
        assert!(
            e[0].starts_with("spec.cidrs[1]: Invalid value: \"300.1.1.1/32\""),
            "{e:?}"
        );
        let e = fields(json!({"cidrs": ["10.0.0.0/24", "10.0.0.128/25"]}));
        assert!(
            e[0].contains("spec.cidrs[1]") && e[0].contains("overlaps spec.cidrs[0]"),
            "{e:?}"
        );
        let e = fields(json!({"cidrs": ["127.0.0.0/8"]}));
        assert!(e[0].contains("loopback"), "{e:?}");
        let e = fields(json!({"cidrs": ["10.0.0.0/24"],
            "serviceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}));
        assert_eq!(
            e,
            ["spec.serviceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]
        );
        let e = fields(json!({"cidrs": ["10.0.0.0/24"],
            "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}));
        assert!(
            e[0].starts_with(
                "spec.namespaceSelector.matchExpressions[0].operator: Unsupported value: \"Near\""
            ),
            "{e:?}"
        );
        assert_eq!(
            validate_spec(&serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap())[0]
                .to_string(),
            "spec: Required value"
        );
    }

    #[test]
    fn defaults_fill_auto_assign_and_priority() {
        let mut p = pool(json!({"cidrs": ["10.0.0.0/24"]}));
        default_pool(&mut p);
        let spec = p.spec.unwrap();
        assert_eq!((spec.auto_assign, spec.priority), (Some(true), Some(0)));
        let mut p = pool(json!({"cidrs": ["10.0.0.0/24"], "autoAssign": false, "priority": 5}));
        default_pool(&mut p);
        let spec = p.spec.unwrap();
        assert_eq!((spec.auto_assign, spec.priority), (Some(false), Some(5)));
    }
}
