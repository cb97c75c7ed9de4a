//! Search page tokens: where the next page starts, for which request, and
//! for which state of the index. A token is refused (with a message saying
//! to start again) once the index has changed, since the ranking it pages
//! through is gone, or when it is presented with a different request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::types::SearchQuery;

/// Results a request can page through: deeper ones cost a candidate list
/// four times as long for every page.
pub const MAX_PAGED_RESULTS: usize = 1000;

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Results (passages, or documents when grouped) already returned.
    pub offset: usize,
    pub generation: u64,
}

/// A fingerprint of everything in `query` that decides its ranking: the
/// same request pages, another one is refused.
fn fingerprint(query: &SearchQuery) -> String {
    let mut q = query.clone();
    q.page_token.clear();
    hex::encode(&Sha256::digest(format!("{q:?}").as_bytes())[..12])
}

impl Page {
    pub fn next(query: &SearchQuery, offset: usize, generation: u64) -> String {
        let text = format!("{offset}.{generation}.{}", fingerprint(query));
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The page `query.page_token` asks for: the first one when empty.
    pub fn of(query: &SearchQuery, generation: u64) -> Result<Page> {
        if query.page_token.is_empty() {
            return Ok(Page {
                offset: 0,
                generation,
            });
        }
        let bad = || Error::invalid("page_token", "not a page token of this server");
        let text = URL_SAFE_NO_PAD
            .decode(query.page_token.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let mut parts = text.splitn(3, '.');
        let (Some(offset), Some(made_at), Some(request)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let offset: usize = offset.parse().map_err(|_| bad())?;
        let made_at: u64 = made_at.parse().map_err(|_| bad())?;
        if request != fingerprint(query) {
            return Err(Error::invalid(
                "page_token",
                "belongs to another request: send the same fields as the first page",
            ));
        }
        if made_at != generation {
            return Err(Error::invalid(
                "page_token",
                "the index changed since this page; search again from the first page",
            ));
        }
        if offset >= MAX_PAGED_RESULTS {
            return Err(bad());
        }
        Ok(Page { offset, generation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_page_the_same_request_on_the_same_index_only() {
        let q = SearchQuery {
            query: "OpenStack".into(),
            top_k: 5,
            ..Default::default()
        };
        assert_eq!(Page::of(&q, 7).unwrap().offset, 0);
        let token = Page::next(&q, 5, 7);
        let next = SearchQuery {
            page_token: token.clone(),
            ..q.clone()
        };
        assert_eq!(Page::of(&next, 7).unwrap().offset, 5);
        let changed = Page::of(&next, 8).unwrap_err().to_string();
        assert!(changed.contains("index changed"), "{changed}");
        let other = SearchQuery {
            query: "Linux".into(),
            page_token: token,
            ..q.clone()
        };
        assert!(
            Page::of(&other, 7)
                .unwrap_err()
                .to_string()
                .contains("another request")
        );
        let garbage = SearchQuery {
            page_token: "%%%".into(),
            ..q
        };
        assert!(Page::of(&garbage, 7).is_err());
    }
}
