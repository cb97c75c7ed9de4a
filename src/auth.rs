//! Optional bearer-token access control: read tokens may search, embed,
//! list, get and describe; admin tokens may also ingest and delete. A token
//! may carry a scope (`read TOKEN tenant=acme`): then it sees and writes
//! only documents whose metadata holds those values (`filter::Scope`).
//! Tokens are compared in constant time and never logged. Health checking
//! and reflection stay open so probes and tools work without a token.

use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::filter::Scope;

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
    tokens: Vec<(Role, Secret, Scope)>,
}

/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

impl Tokens {
    /// Parses a tokens file: one `read TOKEN` or `admin TOKEN` per line,
    /// optionally followed by the token's scope as `key=value` pairs
    /// (`read TOKEN tenant=acme`); blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let mut tokens = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let role = match words.next() {
                Some("read") => Role::Read,
                Some("admin") => Role::Admin,
                _ => return Err(bad_line(n)),
            };
            let token = words.next().ok_or_else(|| bad_line(n))?;
            let mut scope = Scope::default();
            for pair in words {
                let (key, value) = pair
                    .split_once('=')
                    .filter(|(k, v)| crate::metadata::key_problem(k).is_none() && !v.is_empty())
                    .ok_or_else(|| {
                        Error::invalid(
                            "tokens",
                            format!(
                                "line {}: a scope is `key=value` pairs with metadata keys, not {pair:?}",
                                n + 1
                            ),
                        )
                    })?;
                scope.0.insert(key.to_string(), value.to_string());
            }
            tokens.add_scoped(role, token, scope)?;
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

    /// Adds one token that sees everything.
    pub fn add(&mut self, role: Role, token: &str) -> Result<()> {
        self.add_scoped(role, token, Scope::default())
    }

    /// Adds one token limited to `scope`. A token given twice must carry
    /// one scope: which one applied would otherwise depend on the order.
    pub fn add_scoped(&mut self, role: Role, token: &str, scope: Scope) -> Result<()> {
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "token",
                format!("tokens must be at least {MIN_TOKEN_CHARS} characters, without spaces"),
            ));
        }
        if self
            .tokens
            .iter()
            .any(|(_, Secret(t), s)| t == token && *s != scope)
        {
            return Err(Error::invalid(
                "token",
                "a token is listed twice with different scopes",
            ));
        }
        self.tokens.push((role, Secret(token.to_string()), scope));
        Ok(())
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The role and scope a presented token grants. Every configured token
    /// is compared, in constant time, so timing tells nothing about which
    /// (or whether a prefix) matched.
    fn role_of(&self, presented: &[u8]) -> Option<(Role, &Scope)> {
        let mut granted: Option<(Role, &Scope)> = None;
        for (role, Secret(token), scope) in &self.tokens {
            if bool::from(token.as_bytes().ct_eq(presented))
                && granted.is_none_or(|(r, _)| *role > r)
            {
                granted = Some((*role, scope));
            }
        }
        granted
    }

    /// Checks the `authorization: Bearer TOKEN` header of a request and
    /// returns what the token may see (everything without tokens).
    pub fn authorize(
        &self,
        headers: &tonic::codegen::http::HeaderMap,
        needed: Role,
    ) -> Result<Scope> {
        if !self.is_enabled() {
            return Ok(Scope::default());
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
            Some((role, _)) if role < needed => Err(Error::PermissionDenied(
                "this call needs an admin token".into(),
            )),
            Some((_, scope)) => Ok(scope.clone()),
        }
    }
}

fn bad_line(n: usize) -> Error {
    Error::invalid(
        "tokens",
        format!(
            "line {}: expected `read TOKEN` or `admin TOKEN`, then any `key=value` scope",
            n + 1
        ),
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
    fn a_token_line_may_carry_a_scope() {
        let tokens = Tokens::parse(
            "read acme-reader-0123456789 tenant=acme\nadmin acme-admin-0123456789 tenant=acme region=eu\nread global-reader-0123456789\n",
        )
        .unwrap();
        let scope = tokens
            .authorize(&metadata("Bearer acme-admin-0123456789"), Role::Admin)
            .unwrap();
        assert_eq!(scope.0.len(), 2);
        assert_eq!(scope.0["tenant"], "acme");
        assert!(
            tokens
                .authorize(&metadata("Bearer global-reader-0123456789"), Role::Read)
                .unwrap()
                .is_all()
        );
        for bad in [
            "read acme-reader-0123456789 tenant",
            "read acme-reader-0123456789 tenant=",
            "read acme-reader-0123456789 language=en",
            "read same-token-0123456789 tenant=a\nread same-token-0123456789 tenant=b",
        ] {
            assert!(Tokens::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let tokens = Tokens::parse("admin s3cret-s3cret-s3cret").unwrap();
        assert!(!format!("{tokens:?}").contains("s3cret"));
    }
}
