//! The rules of each area, one function per operation; handlers only translate HTTP to calls here.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod assistant;
pub mod audit;
pub mod contacts;
pub mod messages;
pub mod presence;
pub mod rooms;
