//! core/v1 Events on Services (what `kubectl describe svc` lists). Repeats of the same event within ten
//! minutes bump its count instead of creating another object, as client-go's event correlator does.
//! Each controller records under its own `source.component`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

use crate::metrics::METRICS;
use crate::model::ServiceInfo;

/// `source.component` of our events, as upstream's controller names itself.
pub const COMPONENT: &str = "endpoint-slice-controller";
const REPEAT_WINDOW: Duration = Duration::from_secs(600);

struct Seen {
    name: String,
    count: i32,
    at: Instant,
}

pub struct Recorder {
    client: kube::Client,
    instance: String,
    component: &'static str,
    seen: Mutex<HashMap<(String, String, String, String), Seen>>,
}

/// The Service an event is about.
pub struct Involved<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

impl Recorder {
    pub fn new(client: kube::Client, instance: String) -> Self {
        Self::with_component(client, instance, COMPONENT)
    }

    pub fn with_component(client: kube::Client, instance: String, component: &'static str) -> Self {
        Self {
            client,
            instance,
            component,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records a Warning event on the Service. Failures are logged, never returned: events are advisory.
    pub async fn warn(&self, svc: &ServiceInfo, reason: &str, message: &str) {
        let involved = Involved {
            namespace: &svc.namespace,
            name: &svc.name,
            uid: &svc.uid,
        };
        if self.record(&involved, "Warning", reason, message).await {
            METRICS.event();
        }
    }

    /// Records an event of `type_` (Normal or Warning); returns whether it was written.
    pub async fn record(
        &self,
        svc: &Involved<'_>,
        type_: &str,
        reason: &str,
        message: &str,
    ) -> bool {
        let api: Api<Event> = Api::namespaced(self.client.clone(), svc.namespace);
        let k = (
            svc.namespace.to_string(),
            svc.name.to_string(),
            reason.to_string(),
            message.to_string(),
        );
        let repeat = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|_, s| s.at.elapsed() < REPEAT_WINDOW);
            seen.get_mut(&k).map(|s| {
                s.count += 1;
                s.at = Instant::now();
                (s.name.clone(), s.count)
            })
        };
        let now = Timestamp::now();
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({
                "count": count,
                "lastTimestamp": Time(now),
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return true,
                Err(e) => tracing::debug!(error = %e, "event count update failed; creating anew"),
            }
        }
        let name = format!("{}.{:x}", svc.name, now.as_nanosecond());
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(svc.namespace.to_string()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Service".into()),
                namespace: Some(svc.namespace.to_string()),
                name: Some(svc.name.to_string()),
                uid: Some(svc.uid.to_string()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(self.component.into()),
                host: None,
            }),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(
                    k,
                    Seen {
                        name,
                        count: 1,
                        at: Instant::now(),
                    },
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, service = %svc.name, reason, "recording event failed");
                false
            }
        }
    }
}
