//! Secured connections to NATS: TLS with a CA made for the test (and a
//! client certificate, so mutual TLS), and a credentials file for a server
//! in operator mode, with the operator, account and user JWTs minted here.
//! The node and `tepai send` connect through the same options.

use std::path::{Path, PathBuf};
use std::process::Command;

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use tepai::app::Roles;
use tepai::config::NatsOptions;

use crate::auth::start_node_with;
use crate::nats_server::NatsServer;
use crate::support::*;

/// Runs openssl in `dir`; it makes the test CA and certificates.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("openssl is needed to make test certificates ({e}); `apt-get install openssl`")
        });
    assert!(status.success(), "openssl {args:?} failed");
}

/// A new EC key and a certificate for `name`, signed by the CA in `dir`,
/// with `extensions` (an openssl extension file's lines).
#[rustfmt::skip]
fn issue(dir: &Path, name: &str, extensions: &str) {
    let (key, csr, ext, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}"),
        ],
    );
    std::fs::write(dir.join(&ext), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", &pem, "-extfile", &ext,
        ],
    );
}

/// A self-signed CA, a server certificate for 127.0.0.1 and a client
/// certificate, all in `dir`.
#[rustfmt::skip]
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=tepai-test-ca",
        ],
    );
    issue(
        dir,
        "server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    );
    issue(
        dir,
        "client",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    );
}

fn send_args<'a>(connection: &'a [&'a str], commissioner_id: &'a str) -> Vec<&'a str> {
    let mut args = vec!["send"];
    args.extend_from_slice(connection);
    args.extend_from_slice(&[
        "register-commissioner",
        "--commissioner-id",
        commissioner_id,
        "--name",
        "高娜",
        "--home-city",
        "150200",
        "--employer",
        "内蒙古科技大学",
        "--kind",
        "university",
    ]);
    args
}

async fn run_tepai_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_tepai(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_and_tepai_send_connect_over_mutual_tls() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let path = |name: &str| certs.path().join(name);
    let nats = NatsServer::with_config(&format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n}}\n",
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
    ));

    // A client that does not speak TLS is turned away.
    assert!(async_nats::connect(nats.url()).await.is_err());

    let mut options = NatsOptions::plain(nats.url());
    options.nats_tls_ca = Some(path("ca.pem"));
    options.nats_tls_cert = Some(path("client.pem"));
    options.nats_tls_key = Some(path("client.key"));
    let data = tempfile::tempdir().unwrap();
    let node = start_node_with(options, data.path(), Roles::ALL, false).await;

    let c = id();
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let url = nats.url();
    let connection = [
        "--nats-url",
        &url,
        "--nats-tls-ca",
        ca.to_str().unwrap(),
        "--nats-tls-cert",
        cert.to_str().unwrap(),
        "--nats-tls-key",
        key.to_str().unwrap(),
    ];
    let args = send_args(&connection, &c);
    let (code, out, err) = run_tepai_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("accepted"), "{out}");

    // Without the client certificate the server refuses the handshake.
    let args = send_args(&connection[..4], &c);
    let (code, _, err) = run_tepai_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not reachable"), "{err}");
    node.stop().await;
}

// ------------------------------------------------------ credentials file

/// A JWT as NATS wants it: ed25519-nkey signed by `issuer`.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{header}.{}",
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature))
}

fn account_jwt(operator: &KeyPair, account: &KeyPair, name: &str, jetstream: bool) -> String {
    let storage = if jetstream { -1 } else { 0 };
    jwt(
        operator,
        &account.public_key(),
        name,
        serde_json::json!({
            "limits": {
                "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                "wildcards": true, "conn": -1, "leaf": -1,
                "mem_storage": storage, "disk_storage": storage,
                "streams": -1, "consumer": -1,
            },
            "default_permissions": { "pub": {}, "sub": {} },
            "type": "account",
            "version": 2,
        }),
    )
}

/// An operator-mode server config (written next to the operator JWT in
/// `dir`) and a `.creds` file for a user of a JetStream-enabled account.
fn operator_setup(dir: &Path) -> (String, PathBuf) {
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let account = KeyPair::new_account();
    let user = KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "tepai-test",
        serde_json::json!({
            "system_account": system.public_key(),
            "type": "operator",
            "version": 2,
        }),
    );
    let operator_path = dir.join("operator.jwt");
    std::fs::write(&operator_path, &operator_jwt).unwrap();
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "tepai",
        serde_json::json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2,
        }),
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    let creds_path = dir.join("tepai.creds");
    std::fs::write(&creds_path, creds).unwrap();
    let config = format!(
        "operator: {operator_path:?}\nsystem_account: {system}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {system}: \"{system_jwt}\"\n  {account}: \"{account_jwt}\"\n}}\n",
        system = system.public_key(),
        account = account.public_key(),
        system_jwt = account_jwt(&operator, &system, "SYS", false),
        account_jwt = account_jwt(&operator, &account, "TEPAI", true),
    );
    (config, creds_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_and_tepai_send_connect_with_a_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let (config, creds) = operator_setup(dir.path());
    let nats = NatsServer::with_config(&config);

    // Without credentials the server lets no one in.
    assert!(async_nats::connect(nats.url()).await.is_err());

    let mut options = NatsOptions::plain(nats.url());
    options.nats_creds = Some(creds.clone());
    let data = tempfile::tempdir().unwrap();
    let node = start_node_with(options, data.path(), Roles::ALL, false).await;

    let url = nats.url();
    let c = id();
    let connection = ["--nats-url", &url, "--nats-creds", creds.to_str().unwrap()];
    let args = send_args(&connection, &c);
    let (code, out, err) = run_tepai_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("accepted"), "{out}");

    // The event went through JetStream in the account to the views.
    let client = async_nats::ConnectOptions::with_credentials_file(&creds)
        .await
        .unwrap()
        .connect(nats.url())
        .await
        .unwrap();
    wait_for_views(&client, 1).await;
    node.stop().await;
}
