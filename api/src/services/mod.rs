//! The rules of each area, one function per operation; handlers only translate HTTP to calls here.

pub mod accounts;
pub mod contacts;
pub mod messages;
pub mod rooms;
