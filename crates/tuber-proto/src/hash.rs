//! SHA-256 piece hashes and the other 32-byte identifiers.
//!
//! A piece is addressed by the SHA-256 of its bytes (TUBER.md §4). On the JSON
//! side every 32-byte id is 64 lowercase hex digits; on the binary peer wire it
//! is the raw 32 bytes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Why a hex id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The text is not exactly 64 characters.
    #[error("expected 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character is not a lowercase hex digit.
    #[error("not lowercase hex")]
    NotHex,
}

fn parse_hex32(s: &str) -> Result<[u8; 32], IdParseError> {
    if s.len() != 64 {
        return Err(IdParseError::Length(s.len()));
    }
    // A table, not the `hex` crate: a hub parses every hash of every `have`
    // an anonymous client sends (a soak's flood spent half the hub's CPU in
    // `hex::decode_to_slice`). Canonical form is lowercase only, so that one
    // id has one spelling: the table knows no other digits.
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        if (hi | lo) & 0xf0 != 0 {
            return Err(IdParseError::NotHex);
        }
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

/// The value of each lowercase hex digit; 0xff for every other byte.
static NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Parses 64 lowercase hex digits.
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                parse_hex32(s).map(Self)
            }
            /// 64 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            // Short form: logs stay readable and ids stay greppable.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id32!(
    /// The SHA-256 of a piece's bytes: the piece's address.
    PieceHash
);
id32!(
    /// The SHA-256 of a manifest's canonical encoding.
    ManifestId
);
id32!(
    /// A peer's identity. For a permanent peer it is its ed25519 public key;
    /// for a browser the hub assigns random bytes at `welcome`.
    PeerId
);

id32!(
    /// 32 random bytes from the hub that a permanent peer signs in `hello`.
    Nonce
);

impl PieceHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Whether `bytes` hash to this piece.
    pub fn verifies(&self, bytes: &[u8]) -> bool {
        Self::of(bytes) == *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_empty_is_the_sha256_constant() {
        assert_eq!(
            PieceHash::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_is_strict() {
        let h = PieceHash::of(b"x").to_hex();
        assert!(PieceHash::from_hex(&h).is_ok());
        assert_eq!(
            PieceHash::from_hex(&h.to_uppercase()),
            Err(IdParseError::NotHex)
        );
        assert_eq!(PieceHash::from_hex(&h[1..]), Err(IdParseError::Length(63)));
        assert!(PieceHash::from_hex("é").is_err());
    }

    #[test]
    fn hex_round_trips_every_byte_and_refuses_every_other_digit() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 8 + 3) as u8);
        for shift in 0..8u8 {
            let b = bytes.map(|x| x.wrapping_add(shift * 32));
            let h = PieceHash::from_bytes(b);
            assert_eq!(PieceHash::from_hex(&h.to_hex()), Ok(h));
        }
        let good = PieceHash::of(b"y").to_hex();
        for c in 0..=255u8 {
            if c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || !c.is_ascii() {
                continue;
            }
            for at in [0, 1, 63] {
                let mut bad = good.clone().into_bytes();
                bad[at] = c;
                let bad = String::from_utf8(bad).unwrap();
                assert_eq!(
                    PieceHash::from_hex(&bad),
                    Err(IdParseError::NotHex),
                    "{c:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn verifies_detects_one_flipped_bit() {
        let mut data = vec![7u8; 1000];
        let h = PieceHash::of(&data);
        assert!(h.verifies(&data));
        data[500] ^= 1;
        assert!(!h.verifies(&data));
    }
}
