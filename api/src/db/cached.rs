//! `Cached`: keeps the prepared statement of a query diesel would otherwise prepare anew on
//! every run (any `UPDATE`), when the query's type alone fixes its SQL.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// Wraps a query whose SQL is fixed by its type (no optional changeset fields, no lists of
/// values), so its prepared statement is cached under that type like a `SELECT`'s. Diesel
/// never caches an `UPDATE`, because a changeset may leave out `None` fields; preparing one
/// costs SQLite a parse and a plan, several times the work of running it. Wrapping a query
/// whose SQL varies with its values would run the wrong statement: do not.
#[derive(Debug, Clone, Copy)]
pub struct Cached<Q>(pub Q);

impl<Q: 'static> QueryId for Cached<Q> {
    type QueryId = Q;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<Q> {}
