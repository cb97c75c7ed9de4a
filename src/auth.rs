//! Optional bearer-token access control: read tokens may search, embed,
//! list, get and describe; admin tokens may also ingest and delete. Tokens
//! are compared in constant time and never logged. Health checking and
//! reflection stay open so probes and tools work without a token.

use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Admin,
}

/// A token value; its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The configured tokens. With none configured, access control is off.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<(Role, Secret)>,
}

/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

impl Tokens {
    /// Parses a tokens file: one `read TOKEN` or `admin TOKEN` per line;
    /// blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let mut tokens = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (role, token) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad_line(n))?;
            let role = match role {
                "read" => Role::Read,
                "admin" => Role::Admin,
                _ => return Err(bad_line(n)),
            };
            tokens.add(role, token.trim())?;
        }
        Ok(tokens)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
    }

    /// Adds the comma-separated tokens in `WENDA_READ_TOKENS` and
    /// `WENDA_ADMIN_TOKENS`: environment only, never flags, since command
    /// lines are visible to every user of the machine.
    pub fn add_from_env(&mut self) -> Result<()> {
        self.add_from_vars(|var| std::env::var(var).ok())
    }

    /// [`add_from_env`](Self::add_from_env) over any source of variables.
    /// A variable that is set but holds no token (" ", ",") is an error:
    /// read as "no tokens" it would turn access control off in silence.
    fn add_from_vars(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        for (name, role) in [
            ("WENDA_READ_TOKENS", Role::Read),
            ("WENDA_ADMIN_TOKENS", Role::Admin),
        ] {
            let Some(list) = var(name) else {
                continue;
            };
            let tokens: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            if tokens.is_empty() {
                return Err(Error::invalid(
                    name,
                    "is set but holds no token; unset it to run without tokens",
                ));
            }
            for token in tokens {
                self.add(role, token)
                    .map_err(|e| Error::invalid(name, e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Adds one token.
    pub fn add(&mut self, role: Role, token: &str) -> Result<()> {
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "token",
                format!("tokens must be at least {MIN_TOKEN_CHARS} characters, without spaces"),
            ));
        }
        self.tokens.push((role, Secret(token.to_string())));
        Ok(())
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The role a presented token grants. Every configured token is
    /// compared, in constant time, so timing tells nothing about which
    /// (or whether a prefix) matched.
    fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut granted = None;
        for (role, Secret(token)) in &self.tokens {
            if bool::from(token.as_bytes().ct_eq(presented)) {
                granted = granted.max(Some(*role));
            }
        }
        granted
    }

    /// Checks the `authorization: Bearer TOKEN` header of a request.
    pub fn authorize(&self, headers: &tonic::codegen::http::HeaderMap, needed: Role) -> Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        // The scheme is case-insensitive (RFC 7235): "Bearer", "bearer",
        // "BEARER".
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_start().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| Error::Unauthenticated("missing bearer token".into()))?;
        match self.role_of(presented.trim().as_bytes()) {
            None => Err(Error::Unauthenticated("invalid bearer token".into())),
            Some(role) if role < needed => Err(Error::PermissionDenied(
                "this call needs an admin token".into(),
            )),
            Some(_) => Ok(()),
        }
    }
}

fn bad_line(n: usize) -> Error {
    Error::invalid(
        "tokens",
        format!("line {}: expected `read TOKEN` or `admin TOKEN`", n + 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> tonic::codegen::http::HeaderMap {
        let mut m = tonic::codegen::http::HeaderMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn roles_are_enforced() {
        let tokens = Tokens::parse(
            "# tokens\nread  reader-0123456789abcdef\nadmin admin-0123456789abcdef\n",
        )
        .unwrap();
        assert!(
            tokens
                .authorize(&metadata("Bearer reader-0123456789abcdef"), Role::Read)
                .is_ok()
        );
        assert!(matches!(
            tokens.authorize(&metadata("Bearer reader-0123456789abcdef"), Role::Admin),
            Err(Error::PermissionDenied(_))
        ));
        assert!(
            tokens
                .authorize(&metadata("Bearer admin-0123456789abcdef"), Role::Admin)
                .is_ok()
        );
        assert!(
            tokens
                .authorize(&metadata("Bearer admin-0123456789abcdef"), Role::Read)
                .is_ok()
        );
        assert!(matches!(
            tokens.authorize(&metadata("Bearer reader-0123456789abcdeX"), Role::Read),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            tokens.authorize(&metadata("Bearer reader"), Role::Read),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            tokens.authorize(&tonic::codegen::http::HeaderMap::new(), Role::Read),
            Err(Error::Unauthenticated(_))
        ));
    }

    #[test]
    fn off_without_tokens_and_bad_files_are_rejected() {
        assert!(
            Tokens::default()
                .authorize(&tonic::codegen::http::HeaderMap::new(), Role::Admin)
                .is_ok()
        );
        assert!(Tokens::parse("root 0123456789abcdef0123").is_err());
        assert!(Tokens::parse("read short").is_err());
        assert!(Tokens::parse("readonly").is_err());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let tokens = Tokens::parse("read reader-0123456789abcdef").unwrap();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} reader-0123456789abcdef");
            assert!(
                tokens.authorize(&metadata(&value), Role::Read).is_ok(),
                "{scheme}"
            );
        }
        for value in [
            "Basic reader-0123456789abcdef",
            "Bearerreader-0123456789abcdef",
        ] {
            assert!(matches!(
                tokens.authorize(&metadata(value), Role::Read),
                Err(Error::Unauthenticated(_))
            ));
        }
    }

    #[test]
    fn a_token_variable_that_is_set_but_empty_is_an_error() {
        let vars = |read: Option<&str>, admin: Option<&str>| {
            let mut tokens = Tokens::default();
            tokens
                .add_from_vars(|name| match name {
                    "WENDA_READ_TOKENS" => read.map(str::to_string),
                    _ => admin.map(str::to_string),
                })
                .map(|()| tokens)
        };
        for empty in ["", " ", ",", " , ,"] {
            let err = vars(None, Some(empty)).unwrap_err();
            assert!(err.to_string().contains("WENDA_ADMIN_TOKENS"), "{err}");
            assert!(vars(Some(empty), None).is_err());
        }
        assert!(!vars(None, None).unwrap().is_enabled());
        let tokens = vars(Some("reader-0123456789abcdef,"), None).unwrap();
        assert!(tokens.is_enabled());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let tokens = Tokens::parse("admin s3cret-s3cret-s3cret").unwrap();
        assert!(!format!("{tokens:?}").contains("s3cret"));
    }
}
