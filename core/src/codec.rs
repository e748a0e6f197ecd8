//! Codecs turn serde values into payload bytes and back.
//!
//! Every stored event and snapshot records the [`CodecId`] that wrote it, so data written with one codec
//! still decodes after the application's default changes. bincode (2.x, through its serde integration)
//! is the default: compact and fast. JSON is there for readability and interoperability.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CodecError;

/// A serde-based payload format.
///
/// Implemented by [`Bincode`] and [`Json`]; [`CodecId`] names them in storage and dispatches to them.
pub trait Codec {
    /// The id stored next to data this codec wrote.
    const ID: CodecId;

    /// Encodes `value`.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when serde refuses the value.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes bytes this codec wrote; `context` names what is decoded for the error message.
    ///
    /// # Errors
    /// [`CodecError::Decode`] when the bytes do not hold a `T`.
    fn decode<T: DeserializeOwned>(bytes: &[u8], context: &dyn fmt::Display) -> Result<T, CodecError>;
}

/// bincode 2 with its standard configuration (variable-length integers, little endian).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

impl Codec for Bincode {
    const ID: CodecId = CodecId::Bincode;

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| CodecError::Encode {
            codec: Self::ID.as_str(),
            type_name: std::any::type_name::<T>(),
            source: Box::new(e),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8], context: &dyn fmt::Display) -> Result<T, CodecError> {
        let decode_error =
            |source| CodecError::Decode { codec: Self::ID.as_str(), context: context.to_string(), source };
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| decode_error(Box::new(e)))?;
        if read != bytes.len() {
            return Err(decode_error(format!("{} trailing bytes after the value", bytes.len() - read).into()));
        }
        Ok(value)
    }
}

/// JSON through `serde_json`: readable in the database, larger and slower than bincode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    const ID: CodecId = CodecId::Json;

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::Encode {
            codec: Self::ID.as_str(),
            type_name: std::any::type_name::<T>(),
            source: Box::new(e),
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8], context: &dyn fmt::Display) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode {
            codec: Self::ID.as_str(),
            context: context.to_string(),
            source: Box::new(e),
        })
    }
}

/// Names the codec that wrote a payload; stored with every event and snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodecId {
    /// [`Bincode`], the default.
    #[default]
    Bincode,
    /// [`Json`].
    Json,
}

impl CodecId {
    /// The name stored in the database: `bincode` or `json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bincode => "bincode",
            Self::Json => "json",
        }
    }

    /// Encodes `value` with the codec this id names.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when serde refuses the value.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        match self {
            Self::Bincode => Bincode::encode(value),
            Self::Json => Json::encode(value),
        }
    }

    /// Decodes `bytes` with the codec this id names.
    ///
    /// # Errors
    /// [`CodecError::Decode`] when the bytes do not hold a `T`; the message includes `context`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8], context: &dyn fmt::Display) -> Result<T, CodecError> {
        match self {
            Self::Bincode => Bincode::decode(bytes, context),
            Self::Json => Json::decode(bytes, context),
        }
    }
}

impl fmt::Display for CodecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CodecId {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bincode" => Ok(Self::Bincode),
            "json" => Ok(Self::Json),
            other => Err(CodecError::UnknownCodec(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Item {
        sku: String,
        quantity: u32,
        price: i64,
    }

    proptest! {
        #[test]
        fn every_codec_round_trips(sku in ".{0,20}", quantity: u32, price: i64) {
            let item = Item { sku, quantity, price };
            for codec in [CodecId::Bincode, CodecId::Json] {
                let bytes = codec.encode(&item).unwrap();
                prop_assert_eq!(codec.decode::<Item>(&bytes, &"item").unwrap(), item.clone());
            }
        }
    }

    #[test]
    fn decode_errors_name_the_context_and_codec() {
        let err = CodecId::Json.decode::<Item>(b"{", &"event OrderPlaced.v1 at order-1 version 2").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("OrderPlaced.v1 at order-1 version 2") && msg.contains("json"), "{msg}");
        assert!(CodecId::Bincode.decode::<Item>(&[0xff, 0xff], &"x").is_err());
    }

    #[test]
    fn codec_ids_parse_from_their_names() {
        for id in [CodecId::Bincode, CodecId::Json] {
            assert_eq!(id.as_str().parse::<CodecId>().unwrap(), id);
        }
        assert!("xml".parse::<CodecId>().is_err());
    }
}
