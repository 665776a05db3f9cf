//! `site-encrypt certify`: obtain a certificate with the site-encrypt client.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use site_encrypt_client::{
    AccountCredentials, AccountOptions, AcmeClient, CertifyOptions, DefaultHttpClient,
    Http01Server, Http01Solver, Identifier, KeyType, certify, ensure_account,
};
use site_encrypt_proto::fs::{create_private_dir, write_atomic};

#[derive(Args, Debug)]
pub(crate) struct CertifyArgs {
    /// ACME directory URL (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory).
    #[arg(long)]
    directory: String,
    /// A name (or IP address) to certify. Repeat for several; the first is the main name.
    #[arg(long = "domain", required = true)]
    domains: Vec<String>,
    /// Contact email for the account. Repeatable.
    #[arg(long = "email")]
    emails: Vec<String>,
    /// Agree to the CA's terms of service (required by CAs that publish terms).
    #[arg(long)]
    agree_tos: bool,
    /// Port the built-in server answers http-01 challenges on (80 for public CAs).
    #[arg(long = "http-01-port")]
    http_01_port: u16,
    /// Address the built-in http-01 server binds.
    #[arg(long = "http-01-address", default_value = "0.0.0.0")]
    http_01_address: IpAddr,
    /// Extra root certificate (PEM) to trust for the CA's HTTPS, e.g. the local CA's or Pebble's.
    #[arg(long)]
    ca_root: Option<PathBuf>,
    /// Output folder: cert.pem (full chain), key.pem (0600) and account.json (0600, reused next time).
    #[arg(long)]
    out: PathBuf,
    /// Certificate key type: ec256, ec384, rsa2048, rsa3072 or rsa4096.
    #[arg(long, default_value = "ec256", value_parser = parse_key_type)]
    key_type: KeyType,
    /// Certificate profile offered by the CA (see its directory's meta.profiles).
    #[arg(long)]
    profile: Option<String>,
}

fn parse_key_type(s: &str) -> Result<KeyType, String> {
    s.parse::<KeyType>().map_err(|e| e.to_string())
}

pub(crate) async fn run(args: CertifyArgs) -> Result<(), String> {
    let started = Instant::now();
    let http = match &args.ca_root {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --ca-root {}: {e}", path.display()))?;
            DefaultHttpClient::with_root_pem(&pem)
        }
        None => DefaultHttpClient::new(),
    }
    .map_err(|e| e.to_string())?;
    let client = AcmeClient::new(&args.directory, Arc::new(http))
        .await
        .map_err(|e| e.to_string())?;
    if client
        .directory()
        .meta
        .as_ref()
        .and_then(|m| m.terms_of_service.as_ref())
        .is_some()
        && !args.agree_tos
    {
        return Err("this CA publishes terms of service; read them and pass --agree-tos".into());
    }
    create_private_dir(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let account_path = args.out.join("account.json");
    let stored: Option<AccountCredentials> = std::fs::read(&account_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let opts = AccountOptions {
        emails: args.emails.clone(),
        terms_of_service_agreed: args.agree_tos,
        ..Default::default()
    };
    let (account, created) = ensure_account(&client, stored, &opts)
        .await
        .map_err(|e| e.to_string())?;
    if created {
        let json = serde_json::to_vec_pretty(&account).map_err(|e| e.to_string())?;
        write_atomic(&account_path, &json, 0o600)
            .map_err(|e| format!("cannot write {}: {e}", account_path.display()))?;
    }

    let solver = Http01Solver::default();
    let addr = SocketAddr::new(args.http_01_address, args.http_01_port);
    let _server = Http01Server::bind(addr, solver.registry().clone())
        .await
        .map_err(|e| format!("cannot listen for http-01 on {addr}: {e}"))?;
    let ids: Vec<Identifier> = args.domains.iter().map(|d| Identifier::parse(d)).collect();
    let opts = CertifyOptions {
        key_type: args.key_type,
        profile: args.profile.clone(),
        ..Default::default()
    };
    let cert = certify(&client, &account, &ids, &solver, &opts)
        .await
        .map_err(|e| e.to_string())?;

    let cert_path = args.out.join("cert.pem");
    let key_path = args.out.join("key.pem");
    // Key first: a cert.pem on disk always has its key beside it.
    write_atomic(&key_path, cert.key.pkcs8_pem().as_bytes(), 0o600)
        .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
    write_atomic(&cert_path, cert.chain_pem.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    say!(
        "Certificate for {} written to {}",
        args.domains.join(", "),
        cert_path.display()
    );
    say!("Private key written to {}", key_path.display());
    say!("Took {} ms", started.elapsed().as_millis());
    Ok(())
}
