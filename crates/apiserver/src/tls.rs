//! Serving identity kept in the data directory: a CA and serving certificate (generated on first start,
//! reused after), the admin bearer token, and the kubeconfig that points kubectl at this server.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0}")]
    Pem(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write_private(path: &Path, data: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(data.as_bytes()).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "svcplane-ca");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

pub struct Identity {
    pub ca_pem: String,
    pub token: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Loads or creates the CA, the serving certificate for `sans` and the token under `dir/pki`.
pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Identity, TlsError> {
    let pki = dir.join("pki");
    fs::create_dir_all(&pki).map_err(io_err(&pki))?;
    let (ca_crt, ca_key) = (pki.join("ca.crt"), pki.join("ca.key"));
    let ca_keypair = if ca_key.exists() && ca_crt.exists() {
        KeyPair::from_pem(&fs::read_to_string(&ca_key).map_err(io_err(&ca_key))?)?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key, &key.serialize_pem())?;
        fs::write(&ca_crt, cert.pem()).map_err(io_err(&ca_crt))?;
        key
    };
    let ca_pem = fs::read_to_string(&ca_crt).map_err(io_err(&ca_crt))?;

    let (srv_crt, srv_key, srv_sans) = (
        pki.join("apiserver.crt"),
        pki.join("apiserver.key"),
        pki.join("apiserver.sans"),
    );
    let want_sans = sans.join("\n");
    let have_sans = fs::read_to_string(&srv_sans).unwrap_or_default();
    if !(srv_crt.exists() && srv_key.exists() && have_sans == want_sans) {
        // The issuer needs only the CA's name and key, so a restart can sign for new addresses.
        let issuer = Issuer::new(ca_params()?, &ca_keypair);
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(sans.to_vec())?;
        p.distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let cert = p.signed_by(&key, &issuer)?;
        write_private(&srv_key, &key.serialize_pem())?;
        fs::write(&srv_crt, cert.pem()).map_err(io_err(&srv_crt))?;
        fs::write(&srv_sans, &want_sans).map_err(io_err(&srv_sans))?;
    }

    let token_path = dir.join("token");
    let token = match fs::read_to_string(&token_path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            use rand::Rng;
            let mut rng = rand::rng();
            let t: String = (0..48)
                .map(|_| {
                    let c = rng.random_range(0..62u8);
                    (match c {
                        0..=9 => b'0' + c,
                        10..=35 => b'a' + c - 10,
                        _ => b'A' + c - 36,
                    }) as char
                })
                .collect();
            write_private(&token_path, &t)?;
            t
        }
    };

    let certs = rustls_pemfile::certs(&mut io::BufReader::new(
        fs::File::open(&srv_crt).map_err(io_err(&srv_crt))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(io_err(&srv_crt))?;
    let key = rustls_pemfile::private_key(&mut io::BufReader::new(
        fs::File::open(&srv_key).map_err(io_err(&srv_key))?,
    ))
    .map_err(io_err(&srv_key))?
    .ok_or_else(|| TlsError::Pem(format!("{}: no private key", srv_key.display())))?;
    // ring builds with no C toolchain beyond cc; the post-quantum key exchange it lacks is not worth
    // aws-lc's cmake build for a cluster-internal API server.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Identity {
        ca_pem,
        token,
        server_config: Arc::new(cfg),
    })
}

/// Subject alternative names of the serving certificate.
pub fn default_sans(
    bind: IpAddr,
    advertise: IpAddr,
    service_ip: Option<IpAddr>,
    extra: &[String],
) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    for ip in [Some(bind), Some(advertise), service_ip]
        .into_iter()
        .flatten()
    {
        if !ip.is_unspecified() {
            sans.push(ip.to_string());
        }
    }
    sans.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

/// Writes `dir/kubeconfig` for the admin user.
pub fn write_kubeconfig(
    dir: &Path,
    server_url: &str,
    ca_pem: &str,
    token: &str,
) -> Result<(), TlsError> {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: svcplane\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: svcplane\n  context:\n    cluster: svcplane\n    user: admin\n    namespace: default\ncurrent-context: svcplane\n"
    );
    let path = dir.join("kubeconfig");
    let tmp = dir.join("kubeconfig.tmp");
    write_private(&tmp, &text)?;
    fs::rename(&tmp, &path).map_err(io_err(&path))
}
