//! Typed ids and positions: a [`UserId`] is never a [`RoomId`], and neither is a [`Seq`]. Each is
//! an `i64` underneath, stored as BIGINT and sent as a bare JSON number; API shapes (`dto`) keep
//! plain numbers, so the contract does not change.

use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};

macro_rules! typed_i64 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = BigInt)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The number underneath, for API shapes and logs.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<DB: Backend> FromSql<BigInt, DB> for $name
        where
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                Ok($name(i64::from_sql(bytes)?))
            }
        }

        impl<DB: Backend> ToSql<BigInt, DB> for $name
        where
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                <i64 as ToSql<BigInt, DB>>::to_sql(&self.0, out)
            }
        }
    };
}

typed_i64!(
    /// A user's id.
    UserId
);
typed_i64!(
    /// A room's id.
    RoomId
);
typed_i64!(
    /// A position in a room's timeline: strictly increasing from 1, without gaps.
    Seq
);

impl Seq {
    /// Before the first message: a cursor that has seen nothing.
    pub const ZERO: Seq = Seq(0);

    /// The seq after this one.
    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

/// Seqs count: `seq + 1`, `seq - n`.
impl std::ops::Add<i64> for Seq {
    type Output = Seq;
    fn add(self, count: i64) -> Seq {
        Seq(self.0 + count)
    }
}

impl std::ops::Sub<i64> for Seq {
    type Output = Seq;
    fn sub(self, count: i64) -> Seq {
        Seq(self.0 - count)
    }
}

impl std::ops::AddAssign<i64> for Seq {
    fn add_assign(&mut self, count: i64) {
        self.0 += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_as_bare_numbers_and_seqs_count_on() {
        assert_eq!(serde_json::to_string(&UserId(7)).unwrap(), "7");
        assert_eq!(serde_json::from_str::<RoomId>("12").unwrap(), RoomId(12));
        assert_eq!(Seq(4).next(), Seq(5));
        assert_eq!(Seq(4) - 4, Seq::ZERO);
        assert_eq!(Seq(4) + 2, Seq(6));
        assert!(Seq(2) < Seq(10));
        assert_eq!(UserId(3).to_string(), "3");
    }
}
