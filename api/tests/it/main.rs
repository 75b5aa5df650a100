//! Integration tests: each starts the real `chat-api` binary and talks to it over HTTP.

mod account;
mod admin;
mod ai;
mod attacks;
mod chaos;
mod cluster;
mod common;
mod contacts;
mod faults;
mod ops;
mod realtime;
mod rooms;
