//! Parsed domain values: a value of these types has passed the contract's rules, so code past
//! the edge never validates again.

use std::fmt;

/// A username: 3 to 30 ASCII letters, digits, `_`, `.` or `-`. Compared case-insensitively
/// through [`Username::key`]. ASCII only, so look-alike letters from other scripts cannot
/// impersonate another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        let length = raw.chars().count();
        if !(3..=30).contains(&length) {
            return Err("must be 3 to 30 characters long".into());
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err("may contain only letters, digits and _ . -".into());
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that uniqueness and search use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// Orders two usernames as their keys order (byte-wise), without building the keys.
    pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
        a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    }
}

/// An email address, trimmed and lower-cased so that uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, String> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err("this field may not be blank".into());
        }
        if normalised.len() > 254 {
            return Err("must be at most 254 characters long".into());
        }
        let valid = normalised.parse::<lettre::Address>().is_ok()
            && normalised.rsplit_once('@').is_some_and(|(local, domain)| local.len() <= 64 && domain.contains('.'));
        if !valid {
            return Err("enter a valid email address".into());
        }
        Ok(EmailAddress(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The common passwords refused for new passwords (see `api/data/README.md`).
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| include_str!("../data/common-passwords.txt").lines().collect());

/// A new password: 8 to 128 characters, not entirely numeric, not a common password.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Password, String> {
        let length = raw.chars().count();
        if length < 8 {
            return Err("must be at least 8 characters long".into());
        }
        if length > 128 {
            return Err("must be at most 128 characters long".into());
        }
        if raw.chars().all(|c| c.is_ascii_digit()) {
            return Err("may not be entirely numeric".into());
        }
        if COMMON_PASSWORDS.contains(raw.to_lowercase().as_str()) {
            return Err("is too common: choose one that others are unlikely to use".into());
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Free text shown to other people (first name, last name, bio): trimmed, bounded, no control
/// characters except newlines where `multiline`.
pub fn parse_text(raw: &str, max_chars: usize, multiline: bool) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters long"));
    }
    if text.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t'))) {
        return Err("may not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// The lower-cased form of a name that prefix search compares (full Unicode lower-casing).
pub fn search_key(text: &str) -> String {
    text.to_lowercase()
}

/// Longest first or last name.
pub const NAME_MAX_CHARS: usize = 150;
/// Longest profile bio.
pub const BIO_MAX_CHARS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_accepts_the_allowed_alphabet_and_keys_case_insensitively() {
        let name = Username::parse("Alice_B.c-9").unwrap();
        assert_eq!(name.as_str(), "Alice_B.c-9");
        assert_eq!(name.key(), "alice_b.c-9");
    }

    #[test]
    fn usernames_order_as_their_keys_do() {
        // '_' sorts between upper and lower case letters, so comparing the raw names differs.
        let names = ["zed", "Alice", "alice_b", "ALICE.C", "bob", "Bob-2", "a_z", "AZy", "_xx", "X_y"];
        let mut by_key: Vec<&str> = names.to_vec();
        by_key.sort_by_key(|n| Username::parse(n).unwrap().key());
        let mut by_order: Vec<&str> = names.to_vec();
        by_order.sort_by(|a, b| Username::key_order(a, b));
        assert_eq!(by_order, by_key);
        assert_ne!(by_key, {
            let mut raw = names.to_vec();
            raw.sort();
            raw
        });
    }

    #[test]
    fn username_rejects_bad_lengths_and_characters() {
        for bad in ["ab", &"a".repeat(31), "has space", "émile", "semi;colon", ""] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Username::parse(&"a".repeat(30)).is_ok());
    }

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(EmailAddress::parse("  Bob@Example.COM ").unwrap().as_str(), "bob@example.com");
        for bad in ["", "bob", "bob@", "@example.com", "bob@localhost", "a b@example.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn password_rules() {
        assert!(Password::parse("short1").is_err());
        assert!(Password::parse("12345678901").is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse("correct horse").is_ok());
        for common in ["password", "PASSWORD1", "iloveyou", "qwertyuiop"] {
            assert!(Password::parse(common).is_err(), "{common} is common");
        }
        assert_eq!(format!("{:?}", Password::parse("correct horse").unwrap()), "Password(..)");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(parse_text("  Ann ", NAME_MAX_CHARS, false).unwrap(), "Ann");
        assert!(parse_text(&"x".repeat(151), NAME_MAX_CHARS, false).is_err());
        assert!(parse_text("a\u{0}b", NAME_MAX_CHARS, false).is_err());
        assert!(parse_text("line one\nline two", BIO_MAX_CHARS, true).is_ok());
        assert!(parse_text("line one\nline two", NAME_MAX_CHARS, false).is_err());
    }
}
