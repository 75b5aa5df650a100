//! The store scenario: the durable write path alone, in this process. Batches of sends go
//! through the server's own `store_batch`, as its message writer calls it, on a fresh database
//! with the server's connection settings; no sockets, no other threads. Run it under
//! `valgrind --tool=callgrind` to compare two builds by instructions, which stay the same from
//! run to run where this VM's seconds drift by ±20%.

use std::time::Instant;

use anyhow::{Context, ensure};
use chat_api::domain::{ClientId, MessageBody, SendRequest};
use chat_api::ids::{RoomId, UserId};
use chat_api::services::messages::{Outcome, store_batch};
use serde_json::{Value, json};

use crate::server::{Database, Storage};

pub struct Options {
    pub batches: usize,
    pub batch: usize,
    pub rooms: usize,
    pub members: usize,
    pub storage: Storage,
}

pub fn run(options: Options) -> anyhow::Result<Value> {
    ensure!(options.batch > 0 && options.rooms > 0 && options.members > 0, "--batch, --rooms and --members must be positive");
    let database = Database::create(options.storage)?;
    let db = chat_api::db::Db::connect(&database.url)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    chat_api::db::run_migrations(&mut conn)?;
    let hash = chat_api::auth::password::hash_password("bench password", 4).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::seed::users(&database, options.rooms * options.members, &hash)?;
    crate::seed::groups(&database, options.rooms, options.members)?;

    let cpu_before = crate::procstat::own_cpu_seconds();
    let started = Instant::now();
    for batch in 0..options.batches {
        // Send n goes to room n % rooms from its next member in turn, as the fanout load does.
        let requests: Vec<SendRequest> = (0..options.batch)
            .map(|i| -> anyhow::Result<SendRequest> {
                let n = batch * options.batch + i;
                let room = n % options.rooms;
                let member = (n / options.rooms) % options.members;
                Ok(SendRequest {
                    room_id: RoomId(room as i64 + 1),
                    sender_id: UserId((room * options.members + member) as i64 + 1),
                    body: MessageBody::parse(format!("bench message {n} with a body of a typical length for a chat"))?,
                    client_id: ClientId::parse(format!("store-{n}"))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let stored = store_batch(&mut conn, &requests).map_err(|e| anyhow::anyhow!("storing batch {batch}: {e}"))?;
        let refused = stored.outcomes.iter().filter(|o| !matches!(o, Outcome::Stored(_))).count();
        ensure!(refused == 0, "{refused} sends of batch {batch} were not stored: {:?}", stored.outcomes.first());
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = crate::procstat::own_cpu_seconds() - cpu_before;
    let messages = options.batches * options.batch;
    let per_second = messages as f64 / seconds;
    let cpu_us_per_message = cpu * 1e6 / messages as f64;
    let last_seq: i64 = {
        use chat_api::db::schema::rooms;
        use diesel::prelude::*;
        let seqs: Vec<i64> = rooms::table.select(rooms::last_seq).load(&mut *conn).context("reading back")?;
        seqs.into_iter().sum()
    };
    ensure!(last_seq as usize == messages, "{messages} stored but the rooms' seqs add up to {last_seq}");
    println!(
        "store   {:?}: {} batches of {} over {} rooms: {:.0} messages/s  {:.1} us/message  cpu {:.1} us/message",
        options.storage,
        options.batches,
        options.batch,
        options.rooms,
        per_second,
        seconds * 1e6 / messages as f64,
        cpu_us_per_message
    );
    Ok(json!({"scenario": "store", "database": format!("{:?}", options.storage).to_lowercase(), "batches": options.batches,
              "batch": options.batch, "rooms": options.rooms, "members": options.members, "messages": messages,
              "messages_per_second": per_second, "cpu_us_per_message": cpu_us_per_message}))
}
