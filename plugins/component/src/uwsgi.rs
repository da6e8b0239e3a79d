//! The WIT `uwsgi` interface: the uwsgi packet codec (decode, encode,
//! modify) and the response status parser.

use uwsgi_red_core::uwsgi::modifier::{self, Payload};
use uwsgi_red_core::uwsgi::packet::EncodeError as CoreEncodeError;
use uwsgi_red_core::uwsgi::response::StatusSource as CoreSource;
use uwsgi_red_core::uwsgi::{
    encode_head, DecodeError as CoreDecodeError, HeadDecoder, Progress,
    ResponseError as CoreResponseError, StatusParser, DEFAULT_HEAD_LIMIT,
};

use crate::bindings::exports::uwsgi_red::core::uwsgi as wu;
use crate::{head_spans, u32_of, Component};

fn octets(b: &[u8]) -> wu::Octets {
    match std::str::from_utf8(b) {
        Ok(s) => wu::Octets::Text(s.to_string()),
        Err(_) => wu::Octets::Bytes(b.to_vec()),
    }
}

pub(crate) fn decode_error(e: CoreDecodeError) -> wu::DecodeError {
    match e {
        CoreDecodeError::Truncated { got, needed } => wu::DecodeError::Truncated(wu::Truncation {
            got: u32_of(got),
            needed: u32_of(needed),
        }),
        CoreDecodeError::VarOverrun { offset } => wu::DecodeError::VarOverrun(u32_of(offset)),
        CoreDecodeError::DatasizeTooLarge { datasize, limit } => {
            wu::DecodeError::DatasizeTooLarge(wu::Oversize {
                datasize,
                limit: u32_of(limit),
            })
        }
        CoreDecodeError::UnknownModifier { modifier1 } => {
            wu::DecodeError::UnknownModifier(modifier1)
        }
    }
}

pub(crate) fn payload_kind(k: Payload) -> wu::PayloadKind {
    match k {
        Payload::Request => wu::PayloadKind::Request,
        Payload::Vars => wu::PayloadKind::Vars,
        Payload::Opaque => wu::PayloadKind::Opaque,
    }
}

fn response_error(e: CoreResponseError) -> wu::ResponseError {
    match e {
        CoreResponseError::NotHttp { offset } => wu::ResponseError::NotHttp(u32_of(offset)),
        CoreResponseError::BadStatus { offset } => wu::ResponseError::BadStatus(u32_of(offset)),
        CoreResponseError::TooLarge { limit } => wu::ResponseError::TooLarge(u32_of(limit)),
        CoreResponseError::Truncated { got } => wu::ResponseError::Truncated(u32_of(got)),
    }
}

impl wu::Guest for Component {
    fn decode_head(
        packet: Vec<u8>,
        limit: Option<u32>,
    ) -> Result<wu::RequestHead, wu::DecodeError> {
        let limit = limit.map_or(DEFAULT_HEAD_LIMIT, |l| l as usize);
        // The streaming decoder, fed once: its `finish` turns "need more"
        // into the precise Truncated error a one-shot caller wants.
        let mut d = HeadDecoder::new(limit);
        let (head, consumed) = match d.feed(&packet).map_err(decode_error)? {
            Progress::Head { head, consumed } => (head, consumed),
            Progress::NeedMore => {
                let e = d
                    .finish()
                    .unwrap_or(CoreDecodeError::Truncated { got: 0, needed: 4 });
                return Err(decode_error(e));
            }
        };
        Ok(wu::RequestHead {
            modifier1: head.header.modifier1,
            modifier2: head.header.modifier2,
            datasize: head.header.datasize,
            modifier_name: modifier::name(head.header.modifier1).to_string(),
            kind: payload_kind(head.kind),
            head_len: u32_of(consumed),
            method: head.var_str(b"REQUEST_METHOD").map(str::to_string),
            path: head.var_str(b"PATH_INFO").map(str::to_string),
            content_length: head.content_length(),
            vars: head
                .vars
                .iter()
                .map(|v| wu::Var {
                    key: octets(v.key),
                    value: octets(v.value),
                })
                .collect(),
            payload: (head.kind == Payload::Opaque).then(|| head.payload.to_vec()),
        })
    }

    fn decode_head_spans(
        packet: Vec<u8>,
        limit: Option<u32>,
    ) -> Result<wu::HeadSpans, wu::DecodeError> {
        head_spans::decode_head_spans(&packet, limit.map_or(DEFAULT_HEAD_LIMIT, |l| l as usize))
    }

    fn encode_head(
        modifier1: u8,
        modifier2: u8,
        vars: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<u8>, wu::EncodeError> {
        let mut out = Vec::new();
        encode_head(modifier1, modifier2, &vars, &mut out).map_err(|e| match e {
            CoreEncodeError::ItemTooLong { len } => wu::EncodeError::ItemTooLong(u32_of(len)),
            CoreEncodeError::DatasizeTooLarge { datasize } => {
                wu::EncodeError::DatasizeTooLarge(u32_of(datasize))
            }
        })?;
        Ok(out)
    }

    fn response_status(response: Vec<u8>) -> Result<Option<wu::Status>, wu::ResponseError> {
        let mut p = StatusParser::default();
        // A whole response: feed it, then end the stream.
        let _ = p.feed(&response);
        match p.finish() {
            None => Ok(None),
            Some(Err(e)) => Err(response_error(e)),
            Some(Ok(s)) => Ok(Some(wu::Status {
                code: s.code,
                source: match s.source {
                    CoreSource::StatusLine => wu::StatusSource::StatusLine,
                    CoreSource::CgiHeader => wu::StatusSource::CgiHeader,
                    CoreSource::CgiDefault => wu::StatusSource::CgiDefault,
                },
            })),
        }
    }

    fn modifier_name(modifier1: u8) -> Option<String> {
        modifier::lookup(modifier1).map(|m| m.name.to_string())
    }
}
