//! Protobuf encoding for the generated service and client (`build.rs`
//! names this codec): prost's, except that a request that does not decode
//! is INVALID_ARGUMENT (tonic says INTERNAL, a server fault) and is logged,
//! at most once a second.

use std::marker::PhantomData;
use std::time::Duration;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, EncodeBuf};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use crate::telemetry::Throttle;

pub struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = Encoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Encoder<T> {
        Encoder(self.0.encoder())
    }

    fn decoder(&mut self) -> Decoder<U> {
        Decoder(self.0.decoder(), PhantomData)
    }
}

pub struct Encoder<T>(ProstEncoder<T>);

impl<T: Message> tonic::codec::Encoder for Encoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.0.encode(item, buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

pub struct Decoder<U>(ProstDecoder<U>, PhantomData<U>);

impl<U: Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            static UNDECODABLE: Throttle = Throttle::new(Duration::from_secs(1));
            let message = short_name::<U>();
            if let Some(also) = UNDECODABLE.ready() {
                tracing::warn!(message, error = %status.message(), undecodable_since_last_line = also, "undecodable message");
            }
            Status::invalid_argument(format!(
                "the message is not a valid {message}: {}",
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// `SearchRequest` for `wenda::proto::SearchRequest`.
fn short_name<U>() -> &'static str {
    let name = std::any::type_name::<U>();
    name.rsplit("::").next().unwrap_or(name)
}
