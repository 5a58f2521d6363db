//! The OpenAPI documents, rendered once at start from the served resources and held as bytes.

use std::collections::BTreeMap;

use crate::resources;

pub struct OpenApiDocs {
    v2: Vec<u8>,
    v3_index: Vec<u8>,
    v3: BTreeMap<String, Vec<u8>>,
}

impl OpenApiDocs {
    pub fn build() -> Self {
        let served: Vec<openapi::ServedResource> = resources::ALL
            .iter()
            .filter(|r| !r.is_custom())
            .map(|r| openapi::ServedResource {
                group: r.group,
                version: r.version,
                kind: r.kind,
                plural: r.plural,
                namespaced: r.namespaced,
                subresources: r.subresources,
                verbs: r.verbs(),
            })
            .collect();
        let mut doc = openapi::OpenApi::new(&served);
        // Our own kinds are described as their CustomResourceDefinitions describe them on real clusters.
        for r in resources::ALL.iter().filter(|r| r.is_custom()) {
            let schema = match r.kind {
                crate::pools::KIND => Some(crate::pools::openapi_v3_schema()),
                _ => None,
            };
            let added = doc.with_custom(openapi::CustomResource {
                group: r.group.into(),
                version: r.version.into(),
                kind: r.kind.into(),
                plural: r.plural.into(),
                namespaced: r.namespaced,
                subresources: r.subresources.iter().map(|s| (*s).to_owned()).collect(),
                verbs: r.verbs().iter().map(|s| (*s).to_owned()).collect(),
                schema,
            });
            if let Err(e) = added {
                tracing::error!(kind = r.kind, error = %e, "custom kind left out of the OpenAPI documents");
            }
        }
        // kubectl computes apply patches from these; they must match what the server merges by.
        let strategies: Vec<patch::FieldStrategy> = resources::ALL
            .iter()
            .flat_map(|r| patch::list_strategies(r.kind))
            .chain(patch::list_strategies("*"))
            .collect();
        doc.apply_patch_meta(strategies.iter().map(|f| openapi::PatchMeta {
            definition: f.definition,
            field: f.field,
            strategy: f.strategy.as_str(),
            merge_key: f.merge_key,
        }));
        let published = doc.publish();
        Self {
            v2: published.v2.into_bytes(),
            v3_index: published.v3_index.into_bytes(),
            v3: published
                .v3
                .into_iter()
                .map(|(k, d)| (k, d.body.into_bytes()))
                .collect(),
        }
    }

    pub fn v2(&self) -> &[u8] {
        &self.v2
    }

    pub fn v3_index(&self) -> &[u8] {
        &self.v3_index
    }

    pub fn v3_group_version(&self, group: &str, version: &str) -> Option<&[u8]> {
        let key = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        self.v3.get(&key).map(Vec::as_slice)
    }
}
