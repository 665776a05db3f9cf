//! Many TLS handshakes in flight while the certificate is swapped over and
//! over: every handshake completes with a whole, valid certificate (old or new).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use site_encrypt::testing::get_cert;
use site_encrypt::{CertResolver, Served};

fn issue(issuer: &rcgen::Issuer<'_, rcgen::KeyPair>, days: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(vec!["swap.localhost".to_string()]).expect("params");
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(1);
    p.not_after = now + time::Duration::days(days);
    let cert = p.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_survive_continuous_swaps() {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "swap test root");
    let root = ca.self_signed(&ca_key).expect("root").pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let (c1, k1) = issue(&issuer, 30);
    let (c2, k2) = issue(&issuer, 60);
    let a = Served::from_pem(&c1, &k1).expect("a");
    let b = Served::from_pem(&c2, &k2).expect("b");
    let (a_end, b_end) = (a.info.not_after, b.info.not_after);

    let resolver = Arc::new(CertResolver::new(a.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new();
    let server = tokio::spawn(site_encrypt::axum::serve_tls(
        app,
        resolver.clone(),
        listener,
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    // A dedicated thread swaps continuously, independent of the runtime's scheduling.
    let swapper = {
        let (resolver, stop, swaps) = (resolver.clone(), stop.clone(), swaps.clone());
        std::thread::spawn(move || {
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) {
                resolver.set(if flip { a.clone() } else { b.clone() });
                flip = !flip;
                swaps.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };

    let mut clients = Vec::new();
    for _ in 0..16 {
        let root = root.clone();
        clients.push(tokio::spawn(async move {
            let mut seen = (0, 0);
            for _ in 0..40 {
                let info = get_cert(addr, "swap.localhost", Some(&root))
                    .await
                    .expect("every handshake completes and verifies");
                assert_eq!(info.names, ["swap.localhost"]);
                if info.not_after == a_end {
                    seen.0 += 1;
                } else if info.not_after == b_end {
                    seen.1 += 1;
                } else {
                    panic!("a certificate that is neither the old nor the new one");
                }
            }
            seen
        }));
    }
    let mut total = (0, 0);
    for c in clients {
        let (x, y) = c.await.expect("client task");
        total.0 += x;
        total.1 += y;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    server.abort();
    assert_eq!(total.0 + total.1, 16 * 40);
    assert!(
        swaps.load(Ordering::Relaxed) > 20,
        "the certificate was swapped repeatedly during the run"
    );
    assert!(
        total.0 > 0 && total.1 > 0,
        "both certificates were served: {total:?}"
    );
}
