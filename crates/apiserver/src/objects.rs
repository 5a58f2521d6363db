//! Create, read, update, patch and delete of stored objects, with the rules kube-apiserver applies to
//! every kind (metadata ownership, optimistic concurrency, finalizers, graceful pod deletion) and the
//! Service-specific allocation folded into the same store transaction.

use serde_json::{json, Value};
use store::{Compare, KeyValue, Op, Txn};

use crate::http_util::Params;
use crate::listing;
use crate::meta::{self, decode_stored, encode_for_store};
use crate::resources::{self, Resource};
use crate::selectors::Selection;
use crate::services::{self, Plan};
use crate::status::{ApiError, ApiResult};
use crate::Server;

/// The finalizer of a foreground deletion (metav1.FinalizerDeleteDependents).
pub(crate) const FOREGROUND: &str = "foregroundDeletion";

/// How many times a read-modify-write (patch, status, finalizer removal) retries on a concurrent write.
const MAX_RETRIES: usize = 16;

pub struct Listed<T = Value> {
    pub items: Vec<T>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

fn decode_kv(kv: &KeyValue) -> ApiResult<Value> {
    decode_stored(&kv.value, kv.mod_revision)
}

fn precondition_rv(obj: &Value) -> Option<i64> {
    meta::meta_str(obj, "resourceVersion")
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

impl Server {
    pub(crate) async fn namespace_check(
        &self,
        res: &Resource,
        ns: Option<&str>,
        creating: bool,
    ) -> ApiResult<()> {
        let Some(ns) = ns.filter(|_| res.namespaced) else {
            return Ok(());
        };
        let kv = self.store.get(&resources::NAMESPACES.key(None, ns)).await?;
        match kv {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(kv) if creating => {
                let nsobj = decode_kv(&kv)?;
                if meta::deletion_requested(&nsobj) {
                    return Err(ApiError::forbidden(
                        res,
                        "",
                        &format!("unable to create new content in namespace {ns} because it is being terminated"),
                    ));
                }
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    pub async fn get_object(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        match self.store.get(&res.key(ns, name)).await? {
            Some(kv) => decode_kv(&kv),
            None => Err(ApiError::not_found(res, name)),
        }
    }

    /// Waits (up to 3 s, as upstream's watch cache does) until the store has reached `min`.
    async fn wait_for_revision(&self, min: i64) -> ApiResult<()> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let current = self.store.current_revision().await?;
            if current >= min {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(listing::too_large(min, current));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn list_objects(
        &self,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
    ) -> ApiResult<Listed> {
        self.list_with(res, ns, p, decode_kv).await
    }

    /// A list whose items are JSON bytes, the stored objects with their resourceVersion spliced in:
    /// a list response needs nothing else, and skipping the decode and re-encode of every item is most
    /// of what a large list costs.
    pub async fn list_raw(
        &self,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
    ) -> ApiResult<Listed<Vec<u8>>> {
        self.list_with(
            res,
            ns,
            p,
            |kv| match crate::rawjson::with_resource_version(&kv.value, kv.mod_revision) {
                Some(b) => Ok(b),
                None => serde_json::to_vec(&decode_kv(kv)?).map_err(ApiError::internal),
            },
        )
        .await
    }

    async fn list_with<T>(
        &self,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
        item: impl Fn(&KeyValue) -> ApiResult<T>,
    ) -> ApiResult<Listed<T>> {
        let selection = Selection::parse(
            p.label_selector.as_deref(),
            p.field_selector.as_deref(),
            res.kind,
        )
        .map_err(ApiError::bad_request)?;
        let point = listing::read_point(p)?;
        if let Some(min) = point.not_older_than {
            self.wait_for_revision(min).await?;
        }
        let prefix = res.scope_prefix(ns);
        let mut start_after = point.start_after.as_ref().map(|s| format!("{prefix}{s}"));
        let limit = p.limit.unwrap_or(0);
        let mut items = Vec::new();
        // Every read of this list (later pages of the loop below, and the pages its continue token
        // fetches) is at the revision of the first.
        let mut at = point.at;
        let mut revision;
        let mut last_key;
        loop {
            // Ask for a little more than needed: selectors may drop some.
            let page = if limit > 0 { limit.max(64) } else { 0 };
            let r = match at {
                Some(rev) => {
                    self.store
                        .range_at(&prefix, start_after.as_deref(), page, rev)
                        .await
                }
                None => {
                    self.store
                        .range(&prefix, start_after.as_deref(), page)
                        .await
                }
            };
            let r = match r {
                Err(store::StoreError::Compacted { .. }) => return Err(listing::expired(&point)),
                r => r?,
            };
            revision = r.revision;
            at = Some(revision);
            last_key = None;
            let n = r.kvs.len();
            for (i, kv) in r.kvs.iter().enumerate() {
                match selection.matches_stored(&kv.value) {
                    Some(true) => items.push(item(kv)?),
                    Some(false) => {}
                    None => {
                        return Err(ApiError::internal(format!(
                            "stored object {} does not decode",
                            kv.key
                        )))
                    }
                }
                if limit > 0 && items.len() == limit {
                    if i + 1 < n || r.more {
                        last_key = Some(kv.key.clone());
                    }
                    break;
                }
            }
            if last_key.is_some() || !r.more || limit == 0 {
                break;
            }
            start_after = r.kvs.last().map(|kv| kv.key.clone());
        }
        let continue_token = last_key
            .as_deref()
            .map(|k| listing::continue_token(revision, k.strip_prefix(&prefix).unwrap_or(k)));
        Ok(Listed {
            items,
            revision,
            continue_token,
            remaining: None,
        })
    }

    /// Validates and completes a write of `obj` (replacing `old`, if any): typed check, strict fields,
    /// kind-specific defaulting/validation and allocation. Returns the object to store and the plan.
    fn prepare(
        &self,
        res: &Resource,
        mut obj: Value,
        old: Option<&Value>,
        sub: Option<&str>,
        p: &Params,
        duplicates: &[String],
    ) -> ApiResult<(Value, Plan)> {
        meta::check_type(&mut obj, res)?;
        // Server-side field validation: Strict refuses, Warn (the default, as upstream) answers with
        // Warning headers, Ignore says nothing.
        let (strict, warn) = (p.strict_fields(), p.warn_fields());
        let (mut obj, unknown) = meta::typed_roundtrip(res, &obj)?;
        if strict || warn {
            let problems: Vec<String> = duplicates
                .iter()
                .map(|f| format!("json: duplicate field \"{f}\""))
                .chain(
                    unknown
                        .into_iter()
                        .map(|f| format!("unknown field \"{f}\"")),
                )
                .collect();
            if strict && !problems.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    res.kind,
                    res.version,
                    res.kind,
                    problems.join(", ")
                )));
            }
            for problem in problems {
                crate::warnings::add(problem);
            }
        }
        // The status subresource changes status only; the main resource never changes status.
        if res.has_status {
            if let Some(old) = old {
                if sub == Some("status") {
                    let mut merged = old.clone();
                    merged["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
                    if merged["status"].is_null() {
                        merged.as_object_mut().map(|m| m.remove("status"));
                    }
                    // Metadata changes other than through the main resource are ignored, as upstream.
                    merged["metadata"]["resourceVersion"] =
                        obj["metadata"]["resourceVersion"].clone();
                    obj = merged;
                } else if res.kind != "Namespace" || old.get("status").is_some() {
                    match old.get("status") {
                        Some(s) => obj["status"] = s.clone(),
                        None => {
                            obj.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                }
            } else if res.kind == "Service" {
                // A new Service starts with an empty status; the LB controller fills it.
                obj["status"] = json!({"loadBalancer": {}});
            }
        }
        let name = meta::name(&obj).to_string();
        let errs = validate_meta(res, &obj, old);
        if !errs.is_empty() {
            return Err(ApiError::invalid_fields(res, &name, &errs));
        }
        match res.kind {
            "Service" => services::prepare_write(&self.allocs, &obj, old, sub == Some("status")),
            "Pod" if old.is_none() => {
                let mut pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(obj)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                api::pod::default_pod_create(&mut pod);
                Ok((
                    serde_json::to_value(pod).map_err(ApiError::internal)?,
                    Plan::default(),
                ))
            }
            "Namespace" => {
                if old.is_none() {
                    obj["spec"] = json!({"finalizers": ["kubernetes"]});
                    obj["status"] = json!({"phase": "Active"});
                    let labels = meta::meta_mut(&mut obj)
                        .entry("labels")
                        .or_insert_with(|| json!({}));
                    labels["kubernetes.io/metadata.name"] = json!(name);
                }
                Ok((obj, Plan::default()))
            }
            crate::pools::KIND => Ok((
                prepare_pool(res, obj, old, sub == Some("status"))?,
                Plan::default(),
            )),
            "EndpointSlice" => Ok((
                prepare_endpoints_kind(
                    res,
                    obj,
                    old,
                    api::endpointslice::default_endpoint_slice,
                    api::endpointslice::validate_endpoint_slice,
                )?,
                Plan::default(),
            )),
            "Endpoints" => Ok((
                prepare_endpoints_kind(
                    res,
                    obj,
                    old,
                    api::endpoints::default_endpoints,
                    |e, _| api::endpoints::validate_endpoints(e),
                )?,
                Plan::default(),
            )),
            _ => Ok((obj, Plan::default())),
        }
    }

    pub async fn create_object(
        &self,
        res: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        p: &Params,
        duplicates: &[String],
    ) -> ApiResult<Value> {
        if res.read_only {
            return Err(ApiError::method_not_supported(res, "create"));
        }
        meta::check_type(&mut obj, res)?;
        if let (Some(url_ns), Some(body_ns)) = (ns, meta::meta_str(&obj, "namespace")) {
            if res.namespaced && !body_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        if meta::name(&obj).is_empty() {
            match meta::meta_str(&obj, "generateName").filter(|g| !g.is_empty()) {
                Some(g) => {
                    let n = meta::generate_name(g);
                    meta::meta_mut(&mut obj).insert("name".into(), json!(n));
                }
                None => {
                    return Err(ApiError::invalid_fields(
                        res,
                        "",
                        &[api::field::FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ))
                }
            }
        }
        self.namespace_check(res, ns, true).await?;
        meta::init_new(&mut obj, ns.filter(|_| res.namespaced));
        let name = meta::name(&obj).to_string();
        let key = res.key(ns, &name);
        let mut input = obj;
        for attempt in 1.. {
            // Only a Service write can lose an allocation race and be planned again.
            let again = (res.kind == "Service" && attempt < MAX_RETRIES).then(|| input.clone());
            let (obj, plan) = self.prepare(res, input, None, None, p, duplicates)?;
            let mut txn = Txn::new().when(Compare::Absent(key.clone()));
            txn.compares.extend(plan.compares.iter().cloned());
            txn.ops.push(Op::Put(key.clone(), encode_for_store(&obj)));
            txn.ops.extend(plan.ops.iter().cloned());
            if p.dry_run {
                self.allocs.finish(&plan, false);
                return Ok(obj);
            }
            let (resp, compares) = self.commit_planned(txn, &plan).await?;
            if resp.succeeded {
                let mut obj = obj;
                meta::meta_mut(&mut obj)
                    .insert("resourceVersion".into(), json!(resp.revision.to_string()));
                return Ok(obj);
            }
            if let Some(taken) =
                services::ServiceAllocators::taken_key(&compares, resp.failed_compare)
            {
                // Another API server took the value between our pick and our write: plan again.
                self.allocs.mark_key(taken);
                self.metrics.allocation_retried();
                if let Some(obj) = again {
                    input = obj;
                    continue;
                }
            }
            return match resp.failed_compare {
                Some(0) => Err(ApiError::already_exists(res, &name)),
                _ => Err(ApiError::conflict_msg(
                    res,
                    &name,
                    "an allocated value was taken concurrently; please retry",
                )),
            };
        }
        unreachable!("the loop returns")
    }

    /// Sends a write that carries an allocation plan, whose reservations its outcome keeps or undoes.
    /// Returns the compares too, to name an allocation record another writer took.
    async fn commit_planned(
        &self,
        txn: Txn,
        plan: &Plan,
    ) -> ApiResult<(store::TxnResponse, Vec<Compare>)> {
        let compares = txn.compares.clone();
        let resp = match self.store.txn(txn).await {
            Ok(r) => r,
            Err(e) => {
                self.allocs.finish(plan, false);
                return Err(e.into());
            }
        };
        self.allocs.finish(plan, resp.succeeded);
        Ok((resp, compares))
    }

    /// PUT. `sub` is the subresource ("status") if any.
    #[allow(clippy::too_many_arguments)] // the parts of a REST request, as kube-apiserver's handlers take them
    pub async fn update_object(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        mut obj: Value,
        p: &Params,
        duplicates: &[String],
    ) -> ApiResult<(Value, bool)> {
        if res.read_only {
            return Err(ApiError::method_not_supported(res, "update"));
        }
        meta::check_type(&mut obj, res)?;
        let body_name = meta::name(&obj).to_string();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if body_name.is_empty() {
            meta::meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        let key = res.key(ns, name);
        let Some(kv) = self.store.get(&key).await? else {
            // Some kinds accept PUT as create (kube-apiserver's AllowCreateOnUpdate).
            if matches!(res.kind, "Endpoints" | "Event" | "Lease") && sub.is_none() {
                return Ok((self.create_object(res, ns, obj, p, duplicates).await?, true));
            }
            return Err(ApiError::not_found(res, name));
        };
        let old = decode_kv(&kv)?;
        if let Some(rv) = precondition_rv(&obj) {
            if rv != kv.mod_revision {
                return Err(ApiError::conflict(res, name));
            }
        }
        let out = self
            .write_update(
                res,
                ns,
                name,
                sub,
                obj,
                &old,
                kv.mod_revision,
                p,
                duplicates,
            )
            .await?;
        Ok((out, false))
    }

    /// The write of an update whose preconditions were checked against `old` at `old_rev`.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        mut obj: Value,
        old: &Value,
        old_rev: i64,
        p: &Params,
        duplicates: &[String],
    ) -> ApiResult<Value> {
        meta::keep_immutable(&mut obj, old);
        if precondition_rv(&obj).is_none() {
            // Unconditional update: validation sees the stored version, as upstream fills it in.
            meta::meta_mut(&mut obj).insert("resourceVersion".into(), json!(old_rev.to_string()));
        }
        if meta::meta(old).and_then(|m| m.get("namespace")).is_some() && ns.is_some() {
            meta::meta_mut(&mut obj).insert("namespace".into(), json!(ns));
        }
        let mut input = obj;
        for attempt in 1.. {
            let again = (res.kind == "Service" && attempt < MAX_RETRIES).then(|| input.clone());
            match self
                .write_update_once(res, ns, name, sub, input, old, old_rev, p, duplicates)
                .await?
            {
                Ok(obj) => return Ok(obj),
                Err(taken) => {
                    // Another API server took a value between our pick and our write: plan again.
                    self.allocs.mark_key(&taken);
                    self.metrics.allocation_retried();
                    match again {
                        Some(obj) => input = obj,
                        None => {
                            return Err(ApiError::conflict_msg(
                                res,
                                name,
                                "an allocated value was taken concurrently; please retry",
                            ))
                        }
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// One attempt of [`Self::write_update`]: the stored object, or the allocation record whose value
    /// another writer took first.
    #[allow(clippy::too_many_arguments)]
    async fn write_update_once(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        obj: Value,
        old: &Value,
        old_rev: i64,
        p: &Params,
        duplicates: &[String],
    ) -> ApiResult<Result<Value, String>> {
        let (obj, plan) = self.prepare(res, obj, Some(old), sub, p, duplicates)?;
        let key = res.key(ns, name);
        // Removing the last finalizer of an object being deleted completes its deletion.
        let finishing = meta::deletion_requested(&obj)
            && meta::finalizers(&obj).is_empty()
            && !is_graceful_pod(res, &obj);
        if !finishing && same_object(&obj, old) {
            // Nothing changes: like etcd3's GuaranteedUpdate, no write, no new resourceVersion and
            // no watch event (kubectl then reports "patched (no change)").
            self.allocs.finish(&plan, false);
            return Ok(Ok(old.clone()));
        }
        let mut txn = Txn::new().when(Compare::ModRevision(key.clone(), old_rev));
        txn.compares.extend(plan.compares.iter().cloned());
        let mut release = Plan::default();
        if finishing {
            if res.kind == "Service" {
                release = services::release_plan(&self.allocs, old);
            }
            txn.ops.push(Op::Delete(key));
            txn.ops.extend(release.ops.iter().cloned());
        } else {
            txn.ops.push(Op::Put(key, encode_for_store(&obj)));
            txn.ops.extend(plan.ops.iter().cloned());
        }
        if p.dry_run {
            self.allocs.finish(&plan, false);
            return Ok(Ok(obj));
        }
        let (resp, compares) = self.commit_planned(txn, &plan).await?;
        if !resp.succeeded {
            if let Some(taken) =
                services::ServiceAllocators::taken_key(&compares, resp.failed_compare)
            {
                return Ok(Err(taken.to_string()));
            }
            return Err(ApiError::conflict(res, name));
        }
        if finishing {
            self.allocs.finish(&release, true);
        }
        let mut obj = obj;
        meta::meta_mut(&mut obj).insert("resourceVersion".into(), json!(resp.revision.to_string()));
        Ok(Ok(obj))
    }

    #[allow(clippy::too_many_arguments)] // the parts of a REST request, as kube-apiserver's handlers take them
    pub async fn patch_object(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        content_type: &str,
        body: &[u8],
        p: &Params,
    ) -> ApiResult<Value> {
        if res.read_only {
            return Err(ApiError::method_not_supported(res, "patch"));
        }
        let ptype = ::patch::PatchType::from_content_type(content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
        if res.is_custom() && ptype == ::patch::PatchType::StrategicMerge {
            // As for any custom resource: there is no Go struct to carry patch strategies.
            return Err(ApiError::from_parts(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"),
            ));
        }
        let key = res.key(ns, name);
        for _ in 0..MAX_RETRIES {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(ApiError::not_found(res, name));
            };
            let old = decode_kv(&kv)?;
            if p.strict_fields() || p.warn_fields() {
                ::patch::check_strict_decoding(ptype, body).map_err(patch_error)?;
            }
            let patched = ::patch::apply_patch(res.kind, &old, ptype, body).map_err(patch_error)?;
            if let Some(rv) = precondition_rv(&patched) {
                if rv != kv.mod_revision {
                    return Err(ApiError::conflict(res, name));
                }
            }
            if meta::name(&patched) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&patched)
                )));
            }
            match self
                .write_update(res, ns, name, sub, patched, &old, kv.mod_revision, p, &[])
                .await
            {
                Err(e) if e.code == 409 && e.body["reason"] == "Conflict" => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(res, name))
    }

    /// DELETE of one object, with graceful pod deletion, finalizers and allocation release.
    pub async fn delete_object(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        p: &Params,
        precondition: Option<(Option<String>, Option<String>)>,
    ) -> ApiResult<Value> {
        if res.read_only {
            return Err(ApiError::method_not_supported(res, "delete"));
        }
        let key = res.key(ns, name);
        for _ in 0..MAX_RETRIES {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(ApiError::not_found(res, name));
            };
            let mut obj = decode_kv(&kv)?;
            if let Some((uid, rv)) = &precondition {
                if uid.as_deref().is_some_and(|u| u != meta::uid(&obj)) {
                    return Err(ApiError::conflict_msg(
                        res,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                            uid.as_deref().unwrap_or_default(),
                            meta::uid(&obj)
                        ),
                    ));
                }
                if rv
                    .as_deref()
                    .is_some_and(|r| r != kv.mod_revision.to_string())
                {
                    return Err(ApiError::conflict_msg(res, name, &format!(
                        "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
                        rv.as_deref().unwrap_or_default(),
                        kv.mod_revision
                    )));
                }
            }
            if res.kind == "Namespace" {
                if ["default", "kube-system", "kube-public"].contains(&name) {
                    return Err(ApiError::forbidden(
                        res,
                        name,
                        "this namespace may not be deleted",
                    ));
                }
                if meta::deletion_requested(&obj) || p.dry_run {
                    return Ok(obj);
                }
                // Terminating until the garbage collector has emptied it.
                meta::meta_mut(&mut obj)
                    .insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
                obj["status"] = json!({"phase": "Terminating"});
                let txn = Txn::new()
                    .when(Compare::ModRevision(key.clone(), kv.mod_revision))
                    .then(Op::Put(key.clone(), encode_for_store(&obj)));
                let resp = self.store.txn(txn).await?;
                if !resp.succeeded {
                    continue;
                }
                meta::meta_mut(&mut obj)
                    .insert("resourceVersion".into(), json!(resp.revision.to_string()));
                return Ok(obj);
            }
            // Foreground: the object stays (deletionTimestamp + the foregroundDeletion finalizer) until the
            // garbage collector has deleted its dependents, as kube-apiserver and its GC do.
            if p.propagation_policy.as_deref() == Some("Foreground")
                && !meta::finalizers(&obj).iter().any(|f| f == FOREGROUND)
            {
                let m = meta::meta_mut(&mut obj);
                let mut list = m
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.push(json!(FOREGROUND));
                m.insert("finalizers".into(), Value::Array(list));
                // A deletion already under way is marked again so the finalizer is stored.
                m.remove("deletionTimestamp");
            }
            let grace = self.grace_period(res, &obj, p);
            let keep = !meta::finalizers(&obj).is_empty() || grace > 0;
            if p.propagation_policy.as_deref() == Some("Orphan") {
                self.orphan_dependents(meta::uid(&obj)).await?;
            }
            if keep {
                // Mark for deletion and keep the object until its finalizers are gone or the kubelet removes it.
                let m = meta::meta_mut(&mut obj);
                let already = m.contains_key("deletionTimestamp");
                let cur_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
                if already && cur_grace.is_some_and(|g| g <= grace) {
                    return Ok(obj);
                }
                m.insert("deletionTimestamp".into(), json!(meta::time_after(grace)));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                if p.dry_run {
                    return Ok(obj);
                }
                let txn = Txn::new()
                    .when(Compare::ModRevision(key.clone(), kv.mod_revision))
                    .then(Op::Put(key.clone(), encode_for_store(&obj)));
                let resp = self.store.txn(txn).await?;
                if !resp.succeeded {
                    continue;
                }
                meta::meta_mut(&mut obj)
                    .insert("resourceVersion".into(), json!(resp.revision.to_string()));
                return Ok(obj);
            }
            let release = if res.kind == "Service" {
                services::release_plan(&self.allocs, &obj)
            } else {
                Plan::default()
            };
            let mut txn = Txn::new()
                .when(Compare::ModRevision(key.clone(), kv.mod_revision))
                .then(Op::Delete(key.clone()));
            txn.ops.extend(release.ops.iter().cloned());
            if p.dry_run {
                return Ok(obj);
            }
            let resp = self.store.txn(txn).await?;
            if !resp.succeeded {
                continue;
            }
            self.allocs.finish(&release, true);
            return Ok(obj);
        }
        Err(ApiError::conflict(res, name))
    }

    /// Grace period for a delete: only pods bound to a node get one (their kubelet finishes the deletion).
    fn grace_period(&self, res: &Resource, obj: &Value, p: &Params) -> i64 {
        if res.kind != "Pod" {
            return 0;
        }
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !bound || phase == "Succeeded" || phase == "Failed" {
            return 0;
        }
        p.grace_period_seconds
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            .max(0)
    }

    pub async fn delete_collection(
        &self,
        res: &Resource,
        ns: Option<&str>,
        p: &Params,
    ) -> ApiResult<Value> {
        let mut lp = p.clone();
        lp.limit = None;
        lp.continue_token = None;
        let listed = self.list_objects(res, ns, &lp).await?;
        for obj in &listed.items {
            let ons = meta::meta_str(obj, "namespace");
            match self.delete_object(res, ons, meta::name(obj), p, None).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
    }

    /// Removes the owner reference to `uid` from every dependent (propagationPolicy=Orphan).
    async fn orphan_dependents(&self, uid: &str) -> ApiResult<()> {
        for (res, ns, name) in self.gc.dependents_of(uid) {
            self.drop_owner_ref(res, ns.as_deref(), &name, uid).await;
        }
        Ok(())
    }

    /// Removes one dependent's owner reference to `uid`.
    pub(crate) async fn drop_owner_ref(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        uid: &str,
    ) {
        {
            let patch = |obj: &Value| -> Value {
                let mut o = obj.clone();
                if let Some(refs) = o
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                o
            };
            if let Ok(obj) = self.get_object(res, ns, name).await {
                let rv = precondition_rv(&obj).unwrap_or(0);
                let p = Params::default();
                let _ = self
                    .write_update(res, ns, name, None, patch(&obj), &obj, rv, &p, &[])
                    .await;
            }
        }
    }
}

fn is_graceful_pod(res: &Resource, obj: &Value) -> bool {
    res.kind == "Pod"
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0)
}

/// Defaults and validates an EndpointSlice or Endpoints object as kube-apiserver does. One exception: this
/// server's own `default/kubernetes` endpoints may carry a loopback address (an API server bound to 127.0.0.1
/// for local use), which kube-apiserver's reconciler would refuse to publish.
fn prepare_endpoints_kind<T>(
    res: &Resource,
    obj: Value,
    old: Option<&Value>,
    default: fn(&mut T),
    validate: fn(&T, Option<&T>) -> Vec<api::FieldError>,
) -> ApiResult<Value>
where
    T: serde::de::DeserializeOwned
        + serde::Serialize
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    let decode = |v: Value| -> ApiResult<T> {
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
    };
    let mut typed = decode(obj)?;
    default(&mut typed);
    let old = old.cloned().map(decode).transpose()?;
    let meta = typed.metadata();
    let own =
        meta.namespace.as_deref() == Some("default") && meta.name.as_deref() == Some("kubernetes");
    let name = meta.name.clone().unwrap_or_default();
    let errs: Vec<_> = validate(&typed, old.as_ref())
        .into_iter()
        .filter(|e| !(own && e.detail.starts_with("may not be in the loopback range")))
        .collect();
    if !errs.is_empty() {
        return Err(ApiError::invalid_fields(res, &name, &errs));
    }
    serde_json::to_value(typed).map_err(ApiError::internal)
}

/// Defaults and validates a LoadBalancerIPPool write, and keeps `metadata.generation` as kube-apiserver
/// keeps it for custom resources with a status subresource: 1 on create, +1 on each spec change.
fn prepare_pool(
    res: &Resource,
    obj: Value,
    old: Option<&Value>,
    status_only: bool,
) -> ApiResult<Value> {
    use crate::pools::{self, LoadBalancerIPPool};
    let name = meta::name(&obj).to_string();
    let mut pool: LoadBalancerIPPool = serde_json::from_value(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    })?;
    let old_pool: Option<LoadBalancerIPPool> =
        old.and_then(|o| serde_json::from_value(o.clone()).ok());
    let errs = if status_only {
        pools::validate_status(&pool)
    } else {
        if old.is_none() {
            // Status is written through the status subresource only, as for CRDs that enable it.
            pool.status = None;
        }
        pools::default_pool(&mut pool);
        pools::validate_spec(&pool)
    };
    if !errs.is_empty() {
        return Err(ApiError::invalid_fields(res, &name, &errs));
    }
    pool.metadata.generation = Some(match &old_pool {
        None => 1,
        Some(o) => {
            let g = o.metadata.generation.unwrap_or(1);
            if o.spec != pool.spec {
                g + 1
            } else {
                g
            }
        }
    });
    serde_json::to_value(pool).map_err(ApiError::internal)
}

/// Whether an update leaves the stored object as it is (its resourceVersion aside).
fn same_object(new: &Value, old: &Value) -> bool {
    // Compared in place: this runs on every update, and cloning both objects to drop one field cost two
    // deep copies per write.
    fn equal_except(a: &Value, b: &Value, skip: &str) -> bool {
        match (a.as_object(), b.as_object()) {
            (Some(a), Some(b)) => {
                let kept =
                    |m: &serde_json::Map<String, Value>| m.keys().filter(|k| *k != skip).count();
                kept(a) == kept(b)
                    && a.iter()
                        .filter(|(k, _)| *k != skip)
                        .all(|(k, v)| b.get(k) == Some(v))
            }
            _ => a == b,
        }
    }
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return new == old;
    };
    n.len() == o.len()
        && n.iter().all(|(k, v)| match o.get(k) {
            Some(ov) if k == "metadata" => equal_except(v, ov, "resourceVersion"),
            Some(ov) => v == ov,
            None => false,
        })
}

fn patch_error(e: ::patch::PatchError) -> ApiError {
    let st = e.status();
    tracing::debug!(error = %e, "patch rejected");
    ApiError::from_parts(st.code, st.reason, st.message)
}

/// ObjectMeta validation for the kinds whose own validation does not cover it.
fn validate_meta(res: &Resource, obj: &Value, old: Option<&Value>) -> Vec<api::field::FieldError> {
    use api::meta::NameRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    if res.kind == "Service" {
        return Vec::new();
    }
    let parse = |v: &Value| {
        serde_json::from_value::<ObjectMeta>(v.get("metadata").cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let m = parse(obj);
    match old {
        Some(o) => api::meta::validate_object_meta_update(&m, &parse(o), "metadata"),
        None => {
            let rule = if res.kind == "Namespace" {
                NameRule::Dns1123Label
            } else {
                NameRule::Dns1123Subdomain
            };
            api::meta::validate_object_meta(&m, res.namespaced, rule, "metadata")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_object;
    use serde_json::json;

    #[test]
    fn same_object_ignores_only_the_resource_version() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"a": 1}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "7"}, "spec": {"a": 1}});
        let no_rv = json!({"metadata": {"name": "x"}, "spec": {"a": 1}});
        assert!(same_object(&a, &b));
        assert!(same_object(&a, &no_rv));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "y"}, "spec": {"a": 1}})
        ));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "x"}, "spec": {"a": 2}})
        ));
        assert!(!same_object(&a, &json!({"metadata": {"name": "x"}})));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "x", "labels": {}}, "spec": {"a": 1}})
        ));
    }
}
