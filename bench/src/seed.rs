//! Bulk seeding straight into the database (not through the API), in large multi-row inserts.

use diesel::connection::SimpleConnection;
use diesel::{Connection, pg::PgConnection, sqlite::SqliteConnection};

use crate::server::Database;

const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Ana", "Jörg", "Zoë",
    "Noah", "Olivia", "Liam", "Emma", "Mateo", "Sofía", "Yuki", "Hiro", "Priya", "Arjun", "Fatima", "Omar", "Chen",
    "Wei", "Olga", "Ivan", "Amara", "Kwame", "Lucía", "Bruno", "Ingrid", "Sven", "Aisha", "Tariq", "Elena", "Marco",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Müller",
    "Schmidt", "Nguyen", "Kim", "Park", "Tanaka", "Sato", "Singh", "Patel", "Khan", "Rossi", "Russo", "Dubois",
    "Lefèvre", "Novak", "Kowalski", "Ivanov", "Petrov", "Hansen", "Larsen", "Silva", "Santos", "Okafor", "Mensah",
    "Haddad", "Cohen", "Levi", "O'Brien", "Murphy", "Walsh", "Andersson", "Nilsson", "Weiß", "Yamamoto", "Chen",
];

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Inserts `count` users named `user000001…` with varied first and last names; every one has
/// `password_hash`. Returns after one transaction per 1,000 rows.
pub fn users(database: &Database, count: usize, password_hash: &str) -> anyhow::Result<()> {
    let mut statements = Vec::new();
    for chunk_start in (0..count).step_by(1000) {
        let mut values = Vec::new();
        for i in chunk_start..(chunk_start + 1000).min(count) {
            let first = FIRST_NAMES[i % FIRST_NAMES.len()];
            let last = LAST_NAMES[(i / FIRST_NAMES.len()) % LAST_NAMES.len()];
            let username = format!("user{i:06}");
            values.push(format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                sql_text(&username),
                sql_text(&username),
                sql_text(first),
                sql_text(last),
                sql_text(&first.to_lowercase()),
                sql_text(&last.to_lowercase()),
                sql_text(&format!("{username}@bench.test")),
                "''",
                sql_text(password_hash),
                "TRUE",
                "FALSE",
                "TRUE",
                "'2026-01-01 00:00:00'",
            ));
        }
        statements.push(format!(
            "INSERT INTO users (username, username_key, first_name, last_name, first_name_key, last_name_key, email, bio, \
             password_hash, email_verified, is_admin, is_active, date_joined) VALUES {};",
            values.join(",")
        ));
    }
    let batch = format!("BEGIN; {} COMMIT;", statements.join("\n"));
    if let Some(path) = database.url.strip_prefix("sqlite://") {
        SqliteConnection::establish(path)?.batch_execute(&batch)?;
    } else {
        let mut conn = PgConnection::establish(&database.url)?;
        conn.batch_execute(&batch)?;
        conn.batch_execute("ANALYZE users;")?;
    }
    Ok(())
}
