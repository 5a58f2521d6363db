//! Errors of the model. Only an object the data plane cannot represent is an error; the model then leaves
//! that object out (and keeps everything else), so the agent can report it by name.

use crate::types::ServiceKey;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("service {service}: clusterIP {value:?} is not an IP address")]
    ClusterIp { service: ServiceKey, value: String },
}
