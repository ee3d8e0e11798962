//! URL signatures exactly as thumbor and libthumbor compute them: URL-safe base64 (with `=`
//! padding) of HMAC-SHA1 over the raw path after the signature segment, compared in constant time.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The signature libthumbor writes for `payload` (the path after `/<signature>/`, as sent).
pub fn sign(key: &[u8], payload: &str) -> String {
    URL_SAFE.encode(mac(key, payload))
}

fn mac(key: &[u8], payload: &str) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Splits a raw request path into its first segment and the rest: `("sig", "300x200/h/i.jpg")`
/// for `/sig/300x200/h/i.jpg`. Exactly one leading segment is stripped, so the signature itself
/// can never be part of what it signs.
pub fn split_signed_path(raw_path: &str) -> Option<(&str, &str)> {
    raw_path.strip_prefix('/').unwrap_or(raw_path).split_once('/')
}

/// thumbor removes the signature segment from the raw path by text, as `/{hash}/` or
/// `/{quote(hash)}/` (`hash` decoded once): a segment sent in any other spelling (`%4C…`, a
/// lowercase `%3d`) stays in what is verified, and the signature fails. True when `raw` (the
/// segment as sent) is one of those two spellings of `decoded`.
pub fn sent_as_thumbor_finds_it(raw: &str, decoded: &str) -> bool {
    raw == decoded || raw == crate::url::python_quote(decoded)
}

/// Checks `signature` (the first path segment, percent-decoded once by the URL parser) against
/// `payload` with every key; true when one matches. thumbor decodes the received signature once
/// more before comparing, so `%3D` and `%253D` both stand for `=`.
pub fn verify(keys: &[Vec<u8>], signature: &str, payload: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(signature).collect::<Vec<u8>>();
    let mut any = subtle::Choice::from(0u8);
    for key in keys {
        let expected = sign(key, payload);
        // Lengths are public (always 28 for a valid signature); the bytes are compared in constant time.
        any |= expected.as_bytes().ct_eq(&decoded);
    }
    bool::from(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_vectors() {
        let key = b"my-security-key";
        assert_eq!(sign(key, "300x200/my.server.com/some/path/to/image.jpg"), "8ammJH8D-7tXy6kU3lTvoXlhu4o=");
        assert_eq!(
            sign(key, "10x10:200x200/300x200/my.server.com/some/path/to/image.jpg"),
            "B35oBEIwztbc3jm7vsdqLez2C78="
        );
        assert_eq!(
            sign(key, "10x10:200x200/300x200/filters:brightness(20):contrast(10)/my.server.com/some/path/to/image.jpg"),
            "as8U2DbUUtTMgvPF26LkjS3MocY="
        );
        assert_eq!(
            sign(b"mysecret", "500x500/top/raw.githubusercontent.com/cshum/imagor/master/testdata/gopher.png"),
            "cST4Ko5_FqwT3BDn-Wf4gO3RFSk="
        );
    }

    #[test]
    fn verify_accepts_rotation_and_encoded_padding() {
        let keys = vec![b"old".to_vec(), b"my-security-key".to_vec()];
        let payload = "300x200/my.server.com/some/path/to/image.jpg";
        assert!(verify(&keys, "8ammJH8D-7tXy6kU3lTvoXlhu4o=", payload));
        assert!(verify(&keys, "8ammJH8D-7tXy6kU3lTvoXlhu4o%3D", payload));
        assert!(!verify(&keys, "8ammJH8D-7tXy6kU3lTvoXlhu4o", payload), "missing padding");
        assert!(!verify(&keys, "8ammJH8D+7tXy6kU3lTvoXlhu4o=", payload), "standard base64");
        assert!(!verify(&[b"other".to_vec()], "8ammJH8D-7tXy6kU3lTvoXlhu4o=", payload), "wrong key");
        assert!(!verify(&[], "8ammJH8D-7tXy6kU3lTvoXlhu4o=", payload), "no keys");
    }

    #[test]
    fn only_thumbors_two_spellings_of_the_segment_count() {
        let sig = "8ammJH8D-7tXy6kU3lTvoXlhu4o=";
        assert!(sent_as_thumbor_finds_it(sig, sig));
        assert!(sent_as_thumbor_finds_it("8ammJH8D-7tXy6kU3lTvoXlhu4o%3D", sig));
        assert!(!sent_as_thumbor_finds_it("8ammJH8D-7tXy6kU3lTvoXlhu4o%3d", sig), "lowercase escape");
        assert!(!sent_as_thumbor_finds_it("%38ammJH8D-7tXy6kU3lTvoXlhu4o=", sig), "an escaped letter");
        // `%253D` is decoded once to `%3D`, whose quote is `%253D` again.
        assert!(sent_as_thumbor_finds_it("8ammJH8D-7tXy6kU3lTvoXlhu4o%253D", "8ammJH8D-7tXy6kU3lTvoXlhu4o%3D"));
    }

    #[test]
    fn every_single_character_flip_is_refused() {
        let keys = vec![b"my-security-key".to_vec()];
        let sig = "8ammJH8D-7tXy6kU3lTvoXlhu4o=";
        let payload = "300x200/my.server.com/some/path/to/image.jpg";
        for i in 0..sig.len() {
            let mut bytes = sig.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(bytes).unwrap();
            assert!(!verify(&keys, &flipped, payload), "signature flip at {i}");
        }
        for i in 0..payload.len() {
            let mut bytes = payload.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            let flipped = String::from_utf8(bytes).unwrap();
            assert!(!verify(&keys, sig, &flipped), "payload flip at {i}");
        }
    }

    #[test]
    fn split_strips_exactly_one_segment() {
        assert_eq!(split_signed_path("/sig/300x200/h/sig/i.jpg"), Some(("sig", "300x200/h/sig/i.jpg")));
        assert_eq!(split_signed_path("/sig"), None);
    }
}
