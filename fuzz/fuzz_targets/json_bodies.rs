//! Every JSON body type either side parses: client side (directory, order,
//! authorization, challenge, problem, account, renewal info) and CA side
//! (newAccount, newOrder, finalize, revocation, updates).
#![no_main]

use libfuzzer_sys::fuzz_target;
use site_encrypt_proto::*;

fn check<T: serde::de::DeserializeOwned + serde::Serialize>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        // Whatever parses must serialize again.
        let _ = serde_json::to_vec(&v).expect("parsed value serializes");
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Directory>(data);
    check::<Account>(data);
    check::<Order>(data);
    check::<Authorization>(data);
    check::<Challenge>(data);
    check::<Problem>(data);
    check::<RenewalInfo>(data);
    check::<NewAccount>(data);
    check::<NewOrder>(data);
    check::<Finalize>(data);
    check::<Revocation>(data);
    check::<AccountUpdate>(data);
    check::<Jwk>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<CertificateId>();
        let _ = pem::decode_all(s, "CERTIFICATE");
    }
});
