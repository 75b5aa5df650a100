//! `SqliteTimestamp`: a timestamp formatted once as SQLite stores it, for binding to many rows.

use chrono::NaiveDateTime;
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

/// Diesel's own text form of a `NaiveDateTime` on SQLite: rows bound with this read back as
/// any other timestamp.
const FORMAT: &str = "%F %T%.f";

/// A timestamp already in SQLite's text form. Every message of a batch carries the same
/// `created_at`; binding a `NaiveDateTime` would format it again for every row, through
/// chrono's general formatter.
#[derive(Debug, Clone, diesel::expression::AsExpression)]
#[diesel(sql_type = Timestamp)]
pub struct SqliteTimestamp(String);

impl SqliteTimestamp {
    pub fn new(at: NaiveDateTime) -> SqliteTimestamp {
        SqliteTimestamp(at.format(FORMAT).to_string())
    }
}

impl ToSql<Timestamp, Sqlite> for SqliteTimestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> diesel::serialize::Result {
        out.set_value(self.0.as_str());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;

    #[test]
    fn a_preformatted_timestamp_is_stored_as_diesel_stores_the_time_itself() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let at = crate::db::now();
        let (mine, diesels): (String, String) = diesel::select((
            diesel::dsl::sql::<diesel::sql_types::Text>("CAST(").bind::<Timestamp, _>(SqliteTimestamp::new(at)).sql(" AS TEXT)"),
            diesel::dsl::sql::<diesel::sql_types::Text>("CAST(").bind::<Timestamp, _>(at).sql(" AS TEXT)"),
        ))
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(mine, diesels);
        let back: NaiveDateTime =
            diesel::select(diesel::dsl::sql::<Timestamp>("").bind::<Timestamp, _>(SqliteTimestamp::new(at))).get_result(&mut conn).unwrap();
        assert_eq!(back, at);
    }
}
