//! The chat API server: a JSON REST + WebSocket API over SQLite or PostgreSQL.

pub mod ai;
#[cfg(test)]
mod architecture;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod dto;
pub mod error;
pub mod extract;
pub mod ids;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod ports;
pub mod ratelimit;
pub mod realtime;
pub mod routes;
pub mod services;
pub mod spa;
pub mod startup;
pub mod state;
pub mod telemetry;
