//! Bulk seeding straight into the database (not through the API), in large multi-row inserts.

use diesel::connection::SimpleConnection;
use diesel::{Connection, pg::PgConnection, sqlite::SqliteConnection};

use crate::server::Database;

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Ana",
    "Jörg",
    "Zoë",
    "Noah",
    "Olivia",
    "Liam",
    "Emma",
    "Mateo",
    "Sofía",
    "Yuki",
    "Hiro",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Chen",
    "Wei",
    "Olga",
    "Ivan",
    "Amara",
    "Kwame",
    "Lucía",
    "Bruno",
    "Ingrid",
    "Sven",
    "Aisha",
    "Tariq",
    "Elena",
    "Marco",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Müller",
    "Schmidt",
    "Nguyen",
    "Kim",
    "Park",
    "Tanaka",
    "Sato",
    "Singh",
    "Patel",
    "Khan",
    "Rossi",
    "Russo",
    "Dubois",
    "Lefèvre",
    "Novak",
    "Kowalski",
    "Ivanov",
    "Petrov",
    "Hansen",
    "Larsen",
    "Silva",
    "Santos",
    "Okafor",
    "Mensah",
    "Haddad",
    "Cohen",
    "Levi",
    "O'Brien",
    "Murphy",
    "Walsh",
    "Andersson",
    "Nilsson",
    "Weiß",
    "Yamamoto",
    "Chen",
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
    let analyze = if database.url.starts_with("sqlite://") { "" } else { "ANALYZE users;" };
    execute(database, &format!("BEGIN; {} COMMIT; {analyze}", statements.join("\n")))
}

/// Runs `sql` on the database in one batch.
pub fn execute(database: &Database, sql: &str) -> anyhow::Result<()> {
    match database.url.strip_prefix("sqlite://") {
        Some(path) => SqliteConnection::establish(path)?.batch_execute(sql)?,
        None => PgConnection::establish(&database.url)?.batch_execute(sql)?,
    }
    Ok(())
}

/// Creates `rooms` groups of `members` each: room `r` (id r+1 in a fresh database) holds users
/// `r*members+1 ..= (r+1)*members`, owned by the first. Members are made friends of the owner.
pub fn groups(database: &Database, rooms: usize, members: usize) -> anyhow::Result<()> {
    let now = "'2026-01-01 00:00:00'";
    let mut sql = String::from("BEGIN;");
    for room in 0..rooms {
        let owner = room * members + 1;
        sql.push_str(&format!(
            "INSERT INTO rooms (kind, name, owner_id, private_key, last_seq, last_activity_at, created_at) \
             VALUES ('group', 'bench-{room}', {owner}, NULL, 0, {now}, {now});"
        ));
        let rows: Vec<String> = (0..members)
            .map(|m| {
                let user = room * members + 1 + m;
                let role = if m == 0 { "owner" } else { "member" };
                format!("({}, {user}, '{role}', 0, {now})", room + 1)
            })
            .collect();
        sql.push_str(&format!("INSERT INTO room_members (room_id, user_id, role, last_read_seq, joined_at) VALUES {};", rows.join(",")));
        let friends: Vec<String> = (1..members)
            .flat_map(|m| {
                let user = room * members + 1 + m;
                [format!("({owner}, {user}, {now})"), format!("({user}, {owner}, {now})")]
            })
            .collect();
        if !friends.is_empty() {
            sql.push_str(&format!("INSERT INTO friendships (user_id, friend_id, created_at) VALUES {};", friends.join(",")));
        }
    }
    sql.push_str("COMMIT;");
    execute(database, &sql)
}

/// Starts a login session for each of users `1..=count` through the server's own code and
/// returns their access tokens, in user order.
pub fn access_tokens(database: &Database, count: usize, jwt_secret: &str) -> anyhow::Result<Vec<String>> {
    use chat_api::auth::{jwt::JwtKeys, sessions};
    let keys = JwtKeys::new(jwt_secret.as_bytes(), std::time::Duration::from_secs(86_400), std::time::Duration::from_secs(86_400));
    let db = chat_api::db::Db::connect(&database.url)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tokens = chat_api::db::write_tx(&mut conn, |conn| {
        (1..=count as i64)
            .map(|user| sessions::start(conn, &keys, chat_api::ids::UserId(user)).map(|pair| pair.access))
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(tokens)
}

/// Appends `count` messages from user 1 to room 1, in bulk (SQL-generated rows).
pub fn messages(database: &Database, count: usize) -> anyhow::Result<()> {
    let rows = match database.url.starts_with("sqlite://") {
        true => format!(
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {count}) \
             INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, deleted) \
             SELECT 1, g, 1, 'seeded message number ' || g, 'seed-' || g, '2026-01-01 00:00:00', FALSE FROM s;"
        ),
        false => format!(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at, deleted) \
             SELECT 1, g, 1, 'seeded message number ' || g, 'seed-' || g, '2026-01-01 00:00:00', FALSE \
             FROM generate_series(1, {count}) AS g; ANALYZE messages;"
        ),
    };
    execute(database, &format!("BEGIN; {rows} UPDATE rooms SET last_seq = {count} WHERE id = 1; COMMIT;"))
}
