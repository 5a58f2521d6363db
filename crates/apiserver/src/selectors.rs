//! Label and field selectors, in the query-string syntax of kube-apiserver.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

fn split_top_level(s: &str) -> Vec<&str> {
    // Commas separate requirements except inside the parentheses of a set.
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top_level(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(format!("found '', expected: identifier in selector {s:?}"));
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once("==") {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once('=') {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once(" notin ") {
                Requirement::NotIn(
                    k.trim().into(),
                    parse_set(v).ok_or(format!("invalid set in {p:?}"))?,
                )
            } else if let Some((k, v)) = p.split_once(" in ") {
                Requirement::In(
                    k.trim().into(),
                    parse_set(v).ok_or(format!("invalid set in {p:?}"))?,
                )
            } else if p.contains(' ') || p.contains('(') {
                return Err(format!("unable to parse requirement: {p:?}"));
            } else {
                Requirement::Exists(p.to_string())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A field selector: conjunction of `path=value` / `path!=value` over the fields a resource supports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Fields each kind may be selected on (kube-apiserver's field label conversion functions).
fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Namespace" => &["status.phase"],
        "Node" => &["spec.unschedulable"],
        "Service" => &["spec.clusterIP", "spec.type"],
        _ => &[],
    }
}

impl FieldSelector {
    pub fn parse(s: &str, kind: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, neg, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, false, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let k = k.trim();
            if k != "metadata.name"
                && k != "metadata.namespace"
                && !supported_fields(kind).contains(&k)
            {
                return Err(format!("field label not supported: {k}"));
            }
            out.push((k.to_string(), neg, v.trim().to_string()));
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every field named is under `metadata`.
    pub fn metadata_only(&self) -> bool {
        self.0
            .iter()
            .all(|(path, _, _)| path.starts_with("metadata."))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, neg, want)| {
            let mut cur = obj;
            let mut found = true;
            for seg in path.split('.') {
                match cur.get(seg) {
                    Some(v) => cur = v,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            let have = if !found {
                String::new()
            } else {
                match cur {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    Value::Object(o) if path == "source" => o
                        .get("component")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    other => other.to_string(),
                }
            };
            (have == *want) != *neg
        })
    }
}

/// A request's label and field selectors together, as lists and watches apply them.
pub struct Selection {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn parse(labels: Option<&str>, fields: Option<&str>, kind: &str) -> Result<Self, String> {
        Ok(Self {
            labels: LabelSelector::parse(labels.unwrap_or_default())?,
            fields: FieldSelector::parse(fields.unwrap_or_default(), kind)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// Whether a stored object (JSON bytes) is selected; `None` when the bytes do not decode. Only the
    /// metadata is decoded when no selector looks further, which is the common case (labels, names).
    pub fn matches_stored(&self, stored: &[u8]) -> Option<bool> {
        if self.is_empty() {
            return Some(true);
        }
        if self.fields.metadata_only() {
            let view = crate::meta::decode_metadata_only(stored).ok()?;
            return Some(self.matches(&view));
        }
        let full: Value = serde_json::from_slice(stored).ok()?;
        Some(self.matches(&full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_syntax() {
        let o = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
        for (sel, want) in [
            ("app=web", true),
            ("app==web,tier=fe", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing", false),
            ("!missing", true),
            ("app in (db),tier", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selector_fields_are_checked_per_kind() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}});
        let fs = FieldSelector::parse("spec.nodeName=n1,metadata.name=p", "Pod").unwrap();
        assert!(fs.matches(&pod));
        assert!(!FieldSelector::parse("spec.nodeName!=n1", "Pod")
            .unwrap()
            .matches(&pod));
        assert!(FieldSelector::parse("spec.nodeName=", "Pod")
            .unwrap()
            .matches(&json!({"metadata": {}})));
        let sel = Selection::parse(Some("app=web"), Some("metadata.name=p"), "Pod").unwrap();
        assert!(sel.fields.metadata_only());
        let stored =
            br#"{"spec": {"nodeName": "n1"}, "metadata": {"name": "p", "labels": {"app": "web"}}}"#;
        assert_eq!(sel.matches_stored(stored), Some(true));
        let by_node = Selection::parse(None, Some("spec.nodeName=n2"), "Pod").unwrap();
        assert!(!by_node.fields.metadata_only());
        assert_eq!(by_node.matches_stored(stored), Some(false));
        assert_eq!(by_node.matches_stored(b"{"), None);
        assert_eq!(
            FieldSelector::parse("spec.nodeName=x", "Service").unwrap_err(),
            "field label not supported: spec.nodeName"
        );
    }
}
