//! Parsed domain values: a value of these types has passed the contract's rules, so code past
//! the edge never validates again.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::ids::{RoomId, Seq, UserId};

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
        // A domain name, not an address literal (`[1.2.3.4]`, `1.2.3.4`): mail to those skips DNS
        // and its checks, and reaches hosts no mail operator vouches for.
        let domain_name = |domain: &str| {
            domain.contains('.')
                && !domain.starts_with('[')
                && domain.parse::<std::net::IpAddr>().is_err()
                && domain.rsplit('.').next().is_some_and(|tld| tld.chars().any(|c| c.is_alphabetic()))
        };
        let valid = normalised.parse::<lettre::Address>().is_ok()
            && normalised.rsplit_once('@').is_some_and(|(local, domain)| local.len() <= 64 && domain_name(domain));
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

    /// Refuses the account's own username, email address or the address's local part, in any
    /// case: the first things a guesser tries (ASVS v5 6.2.11).
    pub fn check_not_identity(&self, username: &str, email: &str) -> Result<(), String> {
        let password = self.0.to_lowercase();
        let email = email.to_lowercase();
        let local_part = email.split('@').next().unwrap_or_default();
        if [username.to_lowercase().as_str(), email.as_str(), local_part].contains(&password.as_str()) {
            return Err("may not be your username or email address".into());
        }
        Ok(())
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
    // A one-line text is a name: shown next to others', where a reordering or an invisible
    // character makes it pass for another.
    if !multiline && text.chars().any(is_bidi_control) {
        return Err("may not contain bidirectional control characters".into());
    }
    if !multiline && text.chars().any(|c| is_invisible(c) && !c.is_whitespace() && !JOINERS.contains(&c)) {
        return Err("may not contain invisible characters".into());
    }
    if !text.is_empty() && renders_as_nothing(text) {
        return Err("this field may not be blank".into());
    }
    Ok(text.to_owned())
}

/// Characters that reorder the text around them (Unicode bidi controls and marks).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Zero-width joiners, which some scripts and emoji sequences need.
const JOINERS: [char; 2] = ['\u{200C}', '\u{200D}'];

/// Characters that show nothing on their own: white space, format characters, fillers and
/// blank signs (the Hangul fillers, the blank Braille pattern), variation selectors, tags.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{1D159}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Whether `text` would show as blank.
pub fn renders_as_nothing(text: &str) -> bool {
    text.chars().all(is_invisible)
}

/// The lower-cased form of a name that prefix search compares (full Unicode lower-casing).
pub fn search_key(text: &str) -> String {
    text.to_lowercase()
}

/// Longest first or last name.
pub const NAME_MAX_CHARS: usize = 150;
/// Longest profile bio.
pub const BIO_MAX_CHARS: usize = 500;

/// Longest message body, in characters.
pub const BODY_MAX_CHARS: usize = 4000;
/// Longest client id, in characters.
pub const CLIENT_ID_MAX_CHARS: usize = 64;
/// Longest group name, in characters.
pub const GROUP_NAME_MAX_CHARS: usize = 100;
/// Rooms one `sync` may name.
pub const SYNC_MAX_ROOMS: usize = 1000;

/// A message body: 1 to [`BODY_MAX_CHARS`] characters, not blank, no control characters but
/// newlines, tabs and carriage returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: String) -> ApiResult<MessageBody> {
        if renders_as_nothing(&raw) {
            return Err(ApiError::invalid_field("body", "a message may not be blank"));
        }
        if raw.chars().count() > BODY_MAX_CHARS {
            return Err(ApiError::PayloadTooLarge(format!("a message is at most {BODY_MAX_CHARS} characters long")));
        }
        if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
            return Err(ApiError::invalid_field("body", "a message may not contain control characters"));
        }
        Ok(MessageBody(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sender's idempotency key: 1 to [`CLIENT_ID_MAX_CHARS`] printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: String) -> ApiResult<ClientId> {
        let length = raw.chars().count();
        if length == 0 || length > CLIENT_ID_MAX_CHARS || raw.chars().any(char::is_control) {
            return Err(ApiError::invalid_field("client_id", format!("must be 1 to {CLIENT_ID_MAX_CHARS} printable characters")));
        }
        Ok(ClientId(raw))
    }

    /// A fresh id for a send whose client gave none (`prefix` tells where it came from).
    pub fn generate(prefix: &str, random: &str) -> ClientId {
        ClientId(format!("{prefix}-{random}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A group's name: trimmed, 1 to [`GROUP_NAME_MAX_CHARS`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<GroupName, String> {
        let name = parse_text(raw, GROUP_NAME_MAX_CHARS, false)?;
        if name.is_empty() {
            return Err("this field may not be blank".into());
        }
        Ok(GroupName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message someone wants stored: its parts parsed, its room and sender known.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub room_id: RoomId,
    pub sender_id: UserId,
    pub body: MessageBody,
    pub client_id: ClientId,
}

/// What a client of `sync` already has: the highest seq per room (negative counts as 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncCursors(BTreeMap<RoomId, Seq>);

impl SyncCursors {
    /// Parses the frame's `{"<room id>": seq}` map: at most [`SYNC_MAX_ROOMS`] rooms, keyed by id.
    pub fn parse(raw: &BTreeMap<String, i64>) -> ApiResult<SyncCursors> {
        if raw.len() > SYNC_MAX_ROOMS {
            return Err(ApiError::invalid(format!("sync names at most {SYNC_MAX_ROOMS} rooms")));
        }
        let mut cursors = BTreeMap::new();
        for (room, seq) in raw {
            let room_id = room.parse::<i64>().map_err(|_| ApiError::invalid(format!("sync cursors are keyed by room id, not {room:?}")))?;
            cursors.insert(RoomId(room_id), Seq((*seq).max(0)));
        }
        Ok(SyncCursors(cursors))
    }

    /// The cursor of `room_id` (0 when the client named it not).
    pub fn get(&self, room_id: RoomId) -> Seq {
        self.0.get(&room_id).copied().unwrap_or(Seq::ZERO)
    }

    /// (room, seq) pairs in room order.
    pub fn iter(&self) -> impl Iterator<Item = (RoomId, Seq)> + '_ {
        self.0.iter().map(|(room, seq)| (*room, *seq))
    }
}

/// Stores an enum as its text name, and refuses to read any other text: a value this build
/// does not know is a loud error, never a silent default.
macro_rules! text_enum {
    ($type:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $name),+ }
            }
        }

        impl std::str::FromStr for $type {
            type Err = String;
            fn from_str(stored: &str) -> Result<Self, String> {
                match stored {
                    $($name => Ok($type::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($type))),
                }
            }
        }

        impl<DB: diesel::backend::Backend> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $type
        where
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let stored = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                Ok(stored.parse()?)
            }
        }

        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $type
        where
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, DB>) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(self.as_str(), out)
            }
        }
    };
}

/// Whether a room is a two-person chat or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Private,
    Group,
}

text_enum!(RoomKind { Private => "private", Group => "group" });

/// A member's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Owner,
    Admin,
    Member,
}

text_enum!(MemberRole { Owner => "owner", Admin => "admin", Member => "member" });

/// Where a friend request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Accepted,
    Rejected,
    Cancelled,
}

text_enum!(RequestStatus { Pending => "pending", Accepted => "accepted", Rejected => "rejected", Cancelled => "cancelled" });

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
        // #18: address literals are not domains.
        for literal in ["bob@[127.0.0.1]", "bob@127.0.0.1", "bob@[IPv6:::1]", "bob@10.0.0.1"] {
            assert!(EmailAddress::parse(literal).is_err(), "{literal}");
        }
        assert!(EmailAddress::parse("bob@mail.example.co.uk").is_ok());
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
        let identity = |password: &str| Password::parse(password).unwrap().check_not_identity("Ann_Lee_x", "ann.lee99@Example.com");
        for own in ["ann_lee_x", "ANN_LEE_X", "ann.lee99@example.com", "Ann.Lee99"] {
            assert!(identity(own).is_err(), "{own}");
        }
        assert!(identity("ann_lee_x and more").is_ok());
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(parse_text("  Ann ", NAME_MAX_CHARS, false).unwrap(), "Ann");
        assert!(parse_text(&"x".repeat(151), NAME_MAX_CHARS, false).is_err());
        assert!(parse_text("a\u{0}b", NAME_MAX_CHARS, false).is_err());
        assert!(parse_text("line one\nline two", BIO_MAX_CHARS, true).is_ok());
        assert!(parse_text("line one\nline two", NAME_MAX_CHARS, false).is_err());
        for spoof in ["Ann\u{202E}nimda", "Ann\u{200B}", "\u{2800}", "\u{3164}\u{200B}", "\u{2066}Bob\u{2069}"] {
            assert!(parse_text(spoof, NAME_MAX_CHARS, false).is_err(), "{spoof:?}");
        }
        for fine in ["Zoë", "محمد", "👩\u{200D}💻", "Ann Lee"] {
            assert_eq!(parse_text(fine, NAME_MAX_CHARS, false).as_deref(), Ok(fine));
        }
        assert!(MessageBody::parse("\u{200B}\u{2800} \u{FEFF}".into()).is_err());
        assert!(MessageBody::parse("שלום \u{200F}world".into()).is_ok(), "bidi marks are fine in a message");
    }

    #[test]
    fn message_bodies_and_client_ids_are_parsed_once_with_the_contracts_limits() {
        assert!(MessageBody::parse("hi\nthere".into()).is_ok());
        assert!(matches!(MessageBody::parse("  \n".into()), Err(ApiError::Validation { .. })));
        assert!(matches!(MessageBody::parse("x".repeat(BODY_MAX_CHARS + 1)), Err(ApiError::PayloadTooLarge(_))));
        assert!(MessageBody::parse("x".repeat(BODY_MAX_CHARS)).is_ok());
        assert!(MessageBody::parse("a\u{7}b".into()).is_err());
        assert!(ClientId::parse("c-1".into()).is_ok());
        for bad in [String::new(), "x".repeat(CLIENT_ID_MAX_CHARS + 1), "a\nb".into()] {
            assert!(ClientId::parse(bad).is_err());
        }
    }

    #[test]
    fn group_names_are_trimmed_and_never_blank() {
        assert_eq!(GroupName::parse("  Team ").unwrap().as_str(), "Team");
        assert!(GroupName::parse("   ").is_err());
        assert!(GroupName::parse(&"x".repeat(GROUP_NAME_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn sync_cursors_are_keyed_by_room_id_and_never_negative() {
        let raw: BTreeMap<String, i64> = [("3".to_owned(), 7), ("1".to_owned(), -5)].into();
        let cursors = SyncCursors::parse(&raw).unwrap();
        assert_eq!(cursors.iter().collect::<Vec<_>>(), [(RoomId(1), Seq(0)), (RoomId(3), Seq(7))]);
        assert_eq!(cursors.get(RoomId(9)), Seq::ZERO);
        assert!(SyncCursors::parse(&[("general".to_owned(), 1)].into()).is_err());
        let too_many: BTreeMap<String, i64> = (0..=SYNC_MAX_ROOMS).map(|n| (n.to_string(), 0)).collect();
        assert!(SyncCursors::parse(&too_many).is_err());
    }

    #[test]
    fn stored_enums_refuse_unknown_values_instead_of_guessing() {
        assert_eq!("private".parse::<RoomKind>(), Ok(RoomKind::Private));
        assert_eq!("group".parse::<RoomKind>().map(RoomKind::as_str), Ok("group"));
        assert!("channel".parse::<RoomKind>().is_err());
        assert_eq!("cancelled".parse::<RequestStatus>(), Ok(RequestStatus::Cancelled));
        assert!("PENDING".parse::<RequestStatus>().is_err());
        assert_eq!("admin".parse::<MemberRole>().map(MemberRole::as_str), Ok("admin"));
        assert!("moderator".parse::<MemberRole>().is_err());
    }
}
