//! Rendering the catalog into the served documents.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::catalog::Kind;
use crate::{content_hash, paths, schema, OpenApi};

/// A rendered v3 group-version document with its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedDocument {
    /// Value for `?hash=` in the index and for an `ETag`.
    pub hash: String,
    /// Serialized JSON.
    pub body: String,
}

/// Every document serialized once, for serving from memory.
#[derive(Clone, Debug)]
pub struct Published {
    /// `GET /openapi/v2` body.
    pub v2: String,
    /// `GET /openapi/v3` body.
    pub v3_index: String,
    /// Keyed by the path after `/openapi/v3/`: `api/v1`, `apis/discovery.k8s.io/v1`, ...
    pub v3: BTreeMap<String, PublishedDocument>,
}

impl OpenApi {
    /// `GET /openapi/v3`.
    pub fn v3_index(&self) -> Value {
        let docs: Vec<(String, String)> = self
            .group_versions()
            .into_iter()
            .filter_map(|(g, v)| {
                let body = self.v3_group_version(&g, &v)?.to_string();
                Some((v3_key(&g, &v), content_hash(body.as_bytes())))
            })
            .collect();
        index_value(docs.iter().map(|(k, h)| (k.as_str(), h.as_str())))
    }

    /// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`; `None` if nothing is
    /// served in that group-version.
    pub fn v3_group_version(&self, group: &str, version: &str) -> Option<Value> {
        let kinds: Vec<&Kind> = self
            .kinds
            .iter()
            .filter(|k| k.group == group && k.version == version)
            .collect();
        if kinds.is_empty() {
            return None;
        }
        let mut paths = BTreeMap::new();
        let root = paths::root_item(group, version);
        paths.insert(root.path.clone(), root.to_v3());
        for k in &kinds {
            for item in paths::kind_items(k) {
                paths.insert(item.path.clone(), item.to_v3());
            }
        }
        let mut roots = Vec::new();
        for p in paths.values() {
            schema::referenced_names(p, schema::V3_REF_PREFIX, &mut roots);
        }
        let schemas: Map<String, Value> = self
            .closure(roots)
            .into_iter()
            .filter_map(|name| {
                let s = self.definitions.get(&name)?;
                Some((name.clone(), schema::to_v3(&name, s)))
            })
            .collect();
        Some(json!({
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "BearerToken": {
                        "description": "Bearer Token authentication",
                        "in": "header",
                        "name": "authorization",
                        "type": "apiKey",
                    },
                },
            },
            "info": {"title": "Kubernetes", "version": self.info_version},
            "openapi": "3.0.0",
            "paths": paths.into_iter().collect::<Map<String, Value>>(),
        }))
    }

    /// `GET /openapi/v2`.
    pub fn v2(&self) -> Value {
        let mut paths = BTreeMap::new();
        for (g, v) in self.group_versions() {
            let root = paths::root_item(&g, &v);
            paths.insert(root.path.clone(), root.to_v2());
        }
        for k in &self.kinds {
            for item in paths::kind_items(k) {
                paths.insert(item.path.clone(), item.to_v2());
            }
        }
        let mut roots = Vec::new();
        for p in paths.values() {
            schema::referenced_names(p, schema::V2_REF_PREFIX, &mut roots);
        }
        let definitions: Map<String, Value> = self
            .closure(roots)
            .into_iter()
            .filter_map(|name| {
                let s = self.definitions.get(&name)?;
                Some((name.clone(), schema::to_v2(&name, s)))
            })
            .collect();
        json!({
            "definitions": definitions,
            "info": {"title": "Kubernetes", "version": self.info_version},
            "paths": paths.into_iter().collect::<Map<String, Value>>(),
            "security": [{"BearerToken": []}],
            "securityDefinitions": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
            "swagger": "2.0",
        })
    }

    /// Renders and serializes every document once, with the index's hashes matching the bodies.
    pub fn publish(&self) -> Published {
        let mut v3 = BTreeMap::new();
        for (g, v) in self.group_versions() {
            if let Some(doc) = self.v3_group_version(&g, &v) {
                let body = doc.to_string();
                let hash = content_hash(body.as_bytes());
                v3.insert(v3_key(&g, &v), PublishedDocument { hash, body });
            }
        }
        let v3_index =
            index_value(v3.iter().map(|(k, d)| (k.as_str(), d.hash.as_str()))).to_string();
        Published {
            v2: self.v2().to_string(),
            v3_index,
            v3,
        }
    }

    /// All definitions reachable from `roots`, sorted.
    fn closure(&self, roots: Vec<String>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = roots;
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(s) = self.definitions.get(&name) {
                schema::referenced_names(s, schema::V2_REF_PREFIX, &mut stack);
            }
        }
        seen
    }
}

/// Key of a group-version under `/openapi/v3/`.
fn v3_key(group: &str, version: &str) -> String {
    paths::gv_prefix(group, version)
        .trim_start_matches('/')
        .to_owned()
}

fn index_value<'a>(docs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let paths: Map<String, Value> = docs
        .map(|(key, hash)| {
            (
                key.to_owned(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            )
        })
        .collect();
    json!({ "paths": paths })
}
