//! The local cluster's link certificates: one CA, and per region a certificate naming the
//! region (its subject alternative names: the region name and its address), made on the first
//! `up` in `DIR/secrets/tls/` and kept across restarts. Keys are written mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use meridian_replication::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The CA's parameters; an issuer rebuilt from them and the CA key signs like the original.
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Meridian cluster CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// Writes `text` to a new file readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The CA (made if missing) and every region's certificate (made if missing), as the
/// `--tls-*` files of each region, in the order of `regions` (name, address).
pub fn link_certificates(
    dir: &Path,
    regions: &[(String, String)],
) -> anyhow::Result<Vec<TlsFiles>> {
    let tls = dir.join("secrets").join("tls");
    std::fs::create_dir_all(&tls).with_context(|| format!("creating {}", tls.display()))?;
    let (ca_cert, ca_key) = (tls.join("ca.pem"), tls.join("ca-key.pem"));
    if !ca_key.exists() {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key, &key.serialize_pem())?;
        std::fs::write(&ca_cert, cert.pem())
            .with_context(|| format!("writing {}", ca_cert.display()))?;
    }
    let key_pem = std::fs::read_to_string(&ca_key)
        .with_context(|| format!("reading {}", ca_key.display()))?;
    let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(&key_pem)?);
    let mut out = Vec::with_capacity(regions.len());
    for (name, address) in regions {
        let files = TlsFiles {
            cert: tls.join(format!("{name}.pem")),
            key: tls.join(format!("{name}-key.pem")),
            ca: ca_cert.clone(),
        };
        if !files.key.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(vec![name.clone(), address.clone()])?;
            params
                .distinguished_name
                .push(DnType::CommonName, name.as_str());
            let cert = params.signed_by(&key, &issuer)?;
            write_private(&files.key, &key.serialize_pem())?;
            std::fs::write(&files.cert, cert.pem())
                .with_context(|| format!("writing {}", files.cert.display()))?;
        }
        out.push(files);
    }
    Ok(out)
}

/// The `meridian region` flags naming `files`.
pub fn flags(files: &TlsFiles) -> Vec<String> {
    let path = |p: &PathBuf| p.display().to_string();
    vec![
        "--tls-cert".to_owned(),
        path(&files.cert),
        "--tls-key".to_owned(),
        path(&files.key),
        "--tls-ca".to_owned(),
        path(&files.ca),
    ]
}
